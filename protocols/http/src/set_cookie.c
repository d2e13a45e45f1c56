/*
 * set_cookie.c - hp_http_set_cookie(): cookie.h's builder on a response.
 * Kept apart from cookie.c so that the cookie code itself stays free of the
 * server (the fuzz targets build it alone).
 */
#include <hellepoll/cookie.h>
#include <hellepoll/http.h>

int hp_http_set_cookie(struct hp_http_req *req, const struct hp_cookie *c)
{
    char buf[HP_COOKIE_MAX];
    size_t len;
    int err = hp_cookie_format(c, buf, sizeof(buf), &len);

    if (err != 0)
        return err;
    return hp_http_add_header(req, HP_STR_LIT("Set-Cookie"), (struct hp_str){buf, len});
}
