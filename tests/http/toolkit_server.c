/*
 * tests/http/toolkit_server.c - a server for the real-client tests of the
 * request/response toolkit (test_toolkit.py): it parses what clients send
 * with form.h, multipart.h and cookie.h and answers JSON (json.h)
 * describing what it found.
 *
 *   GET|POST /form        {"query": [[name, value]...], "form": [...]}: the
 *                         query string and an urlencoded body, decoded
 *   POST /multipart       {"parts": [{"name", "filename" (or null),
 *                         "content_type", "size", "fnv" (FNV-1a 64, hex),
 *                         "data" (bytes as Latin-1, up to 64 KiB)}...]}; the
 *                         body is streamed through the parser as it arrives
 *   GET /cookies          {"cookies": [[name, value]...]} of every Cookie field
 *   GET /set-cookie?...   Set-Cookie from name, value, path, domain, max_age,
 *                         expires, secure, http_only, same_site
 *   POST /json?mode=M     {"s": body} written with mode latin1, html, strict
 *                         or utf8 (default)
 *   GET /page/NAME        the HTML pages the Chromium tests load
 * Errors are 400 {"error": "EBADMSG", "reason": "..."}.
 *
 * Usage: toolkit_server [--host H] [--port P]; prints the "listening on"
 * line httptest.py reads; SIGTERM or SIGINT stops it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/cookie.h>
#include <hellepoll/form.h>
#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/json.h>
#include <hellepoll/multipart.h>

#define S(x) HP_STR_LIT(x)

static struct hp_http_server *srv;
static struct hp_signal sigint_w, sigterm_w;

static int reply_json(struct hp_http_req *req, int status, struct hp_json *w)
{
    struct hp_str out;
    int err = hp_json_finish(w, &out);

    if (err == 0)
        err = hp_http_reply(req, status, S("application/json"), out.ptr, out.len);
    hp_json_free(w);
    return err;
}

static int reply_error(struct hp_http_req *req, int err, const char *reason)
{
    struct hp_json w;

    hp_json_init_alloc(&w, NULL, 0);
    hp_json_obj_begin(&w);
    hp_json_kv_str(&w, S("error"), hp_str_make(hp_err_name(err)));
    hp_json_kv_str(&w, S("reason"), hp_str_make(reason));
    hp_json_obj_end(&w);
    return reply_json(req, 400, &w);
}

/* Write the pairs of @p input as [[name, value], ...]; 0 or the form's error. */
static int put_pairs(struct hp_json *w, struct hp_str input)
{
    struct hp_form_iter it;
    struct hp_str name, value;
    char *buf = malloc(input.len + 1);
    int rc;

    if (buf == NULL)
        return -ENOMEM;
    hp_json_arr_begin(w);
    hp_form_iter_init(&it, input, HP_FORM_PLUS_SPACE, 0);
    while ((rc = hp_form_next(&it, buf, input.len, &name, &value)) == 1) {
        hp_json_arr_begin(w);
        hp_json_str(w, name);
        hp_json_str(w, value);
        hp_json_arr_end(w);
    }
    hp_json_arr_end(w);
    free(buf);
    return rc;
}

static bool header_is(struct hp_http_req *req, const char *name, struct hp_str prefix)
{
    struct hp_str v;

    return hp_http_req_header(req, name, &v) && hp_str_has_prefix_nocase(v, prefix);
}

static int serve_form(struct hp_http_req *req)
{
    struct hp_json w;
    int err;

    hp_json_init_alloc(&w, NULL, 0);
    hp_json_obj_begin(&w);
    hp_json_key(&w, S("query"));
    if ((err = put_pairs(&w, req->query)) != 0) {
        hp_json_free(&w);
        return reply_error(req, err, "bad query string");
    }
    hp_json_key(&w, S("form"));
    if (header_is(req, "content-type", S("application/x-www-form-urlencoded")))
        err = put_pairs(&w, req->body);
    else
        err = put_pairs(&w, S(""));
    if (err != 0) {
        hp_json_free(&w);
        return reply_error(req, err, "bad form body");
    }
    hp_json_obj_end(&w);
    return reply_json(req, 200, &w);
}

static int serve_cookies(struct hp_http_req *req)
{
    struct hp_str name, value, n, v;
    struct hp_json w;

    hp_json_init_alloc(&w, NULL, 0);
    hp_json_obj_begin(&w);
    hp_json_key(&w, S("cookies"));
    hp_json_arr_begin(&w);
    for (size_t i = 0; hp_http_req_header_at(req, i, &name, &value); i++) {
        struct hp_cookie_iter it;

        if (!hp_str_eq_nocase(name, S("cookie")))
            continue;
        hp_cookie_iter_init(&it, value);
        while (hp_cookie_next(&it, &n, &v)) {
            hp_json_arr_begin(&w);
            hp_json_str(&w, n);
            hp_json_str(&w, v);
            hp_json_arr_end(&w);
        }
    }
    hp_json_arr_end(&w);
    hp_json_obj_end(&w);
    return reply_json(req, 200, &w);
}

/* The query parameter @p name decoded into @p buf (NUL-terminated), or "" */
static struct hp_str param(struct hp_http_req *req, const char *name, char *buf, size_t cap)
{
    struct hp_str v = {"", 0};

    if (hp_form_get(req->query, hp_str_make(name), HP_FORM_PLUS_SPACE, buf, cap - 1, &v) != 0)
        return (struct hp_str){"", 0};
    buf[v.len] = '\0';
    return v;
}

static int serve_set_cookie(struct hp_http_req *req)
{
    char name[256], value[1024], path[256], domain[256], num[32], ss[16];
    struct hp_cookie c = {
        .name = param(req, "name", name, sizeof(name)),
        .value = param(req, "value", value, sizeof(value)),
        .path = param(req, "path", path, sizeof(path)),
        .domain = param(req, "domain", domain, sizeof(domain)),
        .secure = param(req, "secure", num, sizeof(num)).len > 0,
        .http_only = param(req, "http_only", num, sizeof(num)).len > 0,
    };
    struct hp_str s;
    struct hp_json w;
    int err;

    if ((s = param(req, "max_age", num, sizeof(num))).len)
        c.has_max_age = hp_str_to_i64(s, &c.max_age) == 0;
    if ((s = param(req, "expires", num, sizeof(num))).len)
        c.has_expires = hp_str_to_i64(s, &c.expires) == 0;
    s = param(req, "same_site", ss, sizeof(ss));
    c.same_site = hp_str_eq_nocase(s, S("strict")) ? HP_COOKIE_SAME_SITE_STRICT
                  : hp_str_eq_nocase(s, S("lax"))  ? HP_COOKIE_SAME_SITE_LAX
                  : hp_str_eq_nocase(s, S("none")) ? HP_COOKIE_SAME_SITE_NONE
                                                   : HP_COOKIE_SAME_SITE_UNSET;
    if ((err = hp_http_set_cookie(req, &c)) != 0)
        return reply_error(req, err, "cookie refused");
    hp_json_init_alloc(&w, NULL, 0);
    hp_json_obj_begin(&w);
    hp_json_kv_bool(&w, S("ok"), true);
    hp_json_obj_end(&w);
    return reply_json(req, 200, &w);
}

static int serve_json(struct hp_http_req *req)
{
    char mode[16];
    struct hp_str m = param(req, "mode", mode, sizeof(mode));
    unsigned flags = hp_str_eq(m, S("latin1"))   ? HP_JSON_LATIN1
                     : hp_str_eq(m, S("html"))   ? HP_JSON_ESCAPE_HTML
                     : hp_str_eq(m, S("strict")) ? HP_JSON_UTF8_STRICT
                                                 : 0;
    struct hp_json w;
    int err;

    hp_json_init_alloc(&w, NULL, flags);
    hp_json_obj_begin(&w);
    hp_json_kv_str(&w, S("s"), req->body);
    hp_json_obj_end(&w);
    if ((err = hp_json_error(&w)) != 0) {
        hp_json_free(&w);
        return reply_error(req, err, "string refused");
    }
    return reply_json(req, 200, &w);
}

/* ---- multipart, streamed ------------------------------------------------ */

struct upload {
    struct hp_multipart *mp;
    struct hp_json w;
    uint64_t size, fnv;
    bool keep; /* data still under 64 KiB: kept for the answer */
    char *data;
    size_t data_len;
};

static int up_begin(void *ctx, const struct hp_multipart_part *p)
{
    struct upload *u = ctx;

    hp_json_obj_begin(&u->w);
    hp_json_kv_str(&u->w, S("name"), p->name);
    hp_json_key(&u->w, S("filename"));
    if (p->has_filename)
        hp_json_str(&u->w, p->filename);
    else
        hp_json_null(&u->w);
    hp_json_kv_str(&u->w, S("content_type"), p->content_type);
    u->size = 0;
    u->fnv = 14695981039346656037u;
    u->data_len = 0;
    u->keep = true;
    return 0;
}

static int up_data(void *ctx, const struct hp_multipart_part *p, const void *data, size_t len)
{
    struct upload *u = ctx;
    const unsigned char *b = data;

    (void)p;
    for (size_t i = 0; i < len; i++)
        u->fnv = (u->fnv ^ b[i]) * 1099511628211u;
    u->size += len;
    if (u->keep && u->data_len + len <= 65536) {
        memcpy(u->data + u->data_len, data, len);
        u->data_len += len;
    } else {
        u->keep = false;
    }
    return 0;
}

static int up_end(void *ctx, const struct hp_multipart_part *p)
{
    struct upload *u = ctx;
    char hex[17];

    (void)p;
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)u->fnv);
    hp_json_kv_int(&u->w, S("size"), (int64_t)u->size);
    hp_json_kv_str(&u->w, S("fnv"), (struct hp_str){hex, 16});
    if (u->keep) {
        hp_json_key(&u->w, S("data"));
        /* bytes, not text: Latin-1 for this one string */
        hp_json_str_flags(&u->w, (struct hp_str){u->data, u->data_len}, HP_JSON_LATIN1);
    }
    return hp_json_obj_end(&u->w);
}

static void upload_free(struct upload *u)
{
    hp_multipart_free(u->mp);
    hp_json_free(&u->w);
    free(u->data);
    free(u);
}

/*
 * The client went away (or the body was malformed, or the server is
 * stopping) while an upload was being parsed: the request is still ours to
 * finish.
 */
static void on_abort(struct hp_http_req *req, int status)
{
    (void)status;
    if (req->data == NULL)
        return;
    upload_free(req->data);
    req->data = NULL;
    hp_http_req_release(req);
}

/*
 * Answer a parse error as soon as it happens (from a body piece), instead
 * of after the whole body: HP_TOOLKIT_EARLY_REPLY=1. Off by default: with
 * the server as of this writing, finishing the request from a body piece
 * before the last is a use after free in conn.c (body_streamed), reported
 * to the lead; this switch reproduces it.
 */
static bool early_reply;

/*
 * The body, piece by piece. A parse error is answered once the body has
 * ended (the rest is parsed no further); the final call (len 0) answers.
 */
static int on_body(struct hp_http_req *req, const void *data, size_t len)
{
    struct upload *u = req->data;
    int err;

    if (u == NULL)
        return 0; /* answered already */
    err = len > 0 ? hp_multipart_feed(u->mp, data, len) : hp_multipart_finish(u->mp);
    if (len > 0 && (err == 0 || !early_reply))
        return 0; /* an error sticks: hp_multipart_finish() returns it */
    req->data = NULL;
    if (err != 0) {
        err = reply_error(req, err, hp_multipart_reason(u->mp));
    } else {
        hp_json_arr_end(&u->w);
        hp_json_obj_end(&u->w);
        err = reply_json(req, 200, &u->w);
    }
    upload_free(u);
    return err;
}

static int start_upload(struct hp_http_req *req)
{
    struct hp_str ct, boundary;
    struct upload *u;
    int err;

    if (!hp_http_req_header(req, "content-type", &ct) ||
        (err = hp_multipart_boundary(ct, &boundary)) != 0)
        return reply_error(req, -EINVAL, "not multipart or no boundary");
    if ((u = calloc(1, sizeof(*u))) == NULL || (u->data = malloc(65536)) == NULL) {
        free(u);
        return -ENOMEM;
    }
    hp_json_init_alloc(&u->w, NULL, 0);
    err = hp_multipart_new(&u->mp, boundary,
                           &(struct hp_multipart_opts){.on_part_begin = up_begin,
                                                       .on_part_data = up_data,
                                                       .on_part_end = up_end,
                                                       .ctx = u,
                                                       .max_part_bytes = 64 << 20});
    if (err != 0) {
        upload_free(u);
        return err;
    }
    hp_json_obj_begin(&u->w);
    hp_json_key(&u->w, S("parts"));
    hp_json_arr_begin(&u->w);
    req->data = u;
    return hp_http_req_read_body(req, on_body);
}

/* ---- pages for Chromium -------------------------------------------------- */

static const char page_toolkit[] =
    "<!doctype html><html><head><meta charset=utf-8><title>toolkit</title></head><body>\n"
    "<pre id=out>pending</pre>\n"
    "<script>\n"
    "const out = {};\n"
    "async function run() {\n"
    "  const bytes = new Uint8Array(256); for (let i = 0; i < 256; i++) bytes[i] = i;\n"
    "  const fd = new FormData();\n"
    "  fd.append('greeting', 'h\\u00e9llo w\\u00f6rld & \"quotes\"\\r\\nline 2');\n"
    "  fd.append('upload', new File([bytes], 'b\\u00efn \"q\".dat', {type: "
    "'application/octet-stream'}));\n"
    "  out.multipart = await (await fetch('/multipart', {method: 'POST', body: fd})).json();\n"
    "  const form = new URLSearchParams();\n"
    "  form.append('a b', 'c&d=e'); form.append('uni', '\\u20ac \\ud83d\\ude00'); "
    "form.append('empty', "
    "'');\n"
    "  out.form = await (await fetch('/form?q=1+2&r=%2B', {method: 'POST', body: form})).json();\n"
    "  out.set1 = await (await "
    "fetch('/set-cookie?name=sid&value=abc123&path=/&http_only=1&same_site="
    "lax')).json();\n"
    "  out.set2 = await (await "
    "fetch('/set-cookie?name=theme&value=%22dark%22&path=/&max_age=600'))."
    "json();\n"
    "  out.document_cookie = document.cookie;\n"
    "  out.cookies = await (await fetch('/cookies')).json();\n"
    "  out.del = await (await fetch('/set-cookie?name=theme&value=&path=/&max_age=0')).json();\n"
    "  out.after = await (await fetch('/cookies')).json();\n"
    "}\n"
    "run().then(() => { document.getElementById('out').textContent = JSON.stringify(out); },\n"
    "  e => { document.getElementById('out').textContent = 'ERROR ' + e; });\n"
    "</script></body></html>\n";

/* A real <form> submitted by the browser itself (navigation, urlencoded). */
static const char page_submit[] =
    "<!doctype html><html><head><meta charset=utf-8></head><body>\n"
    "<form id=f method=post action=/form?via=form enctype=application/x-www-form-urlencoded>\n"
    "<input name=user value='J\xc3\xbcrgen + Ann'><textarea name=msg>a&amp;b=c\nd</textarea>\n"
    "<input type=checkbox name=c checked><input type=hidden name='x y' value='%41'>\n"
    "</form><script>document.getElementById('f').submit();</script></body></html>\n";

static int serve_page(struct hp_http_req *req, struct hp_str name)
{
    if (hp_str_eq(name, S("toolkit")))
        return hp_http_reply(req, 200, S("text/html; charset=utf-8"), page_toolkit,
                             sizeof(page_toolkit) - 1);
    if (hp_str_eq(name, S("submit")))
        return hp_http_reply(req, 200, S("text/html; charset=utf-8"), page_submit,
                             sizeof(page_submit) - 1);
    return hp_http_reply(req, 404, S("text/plain"), "no such page\n", 13);
}

/* ---- dispatch ------------------------------------------------------------ */

static int on_head(struct hp_http_req *req)
{
    if (hp_str_eq(req->path, S("/multipart")))
        return start_upload(req);
    return 0; /* buffer the body; on_request follows */
}

static int on_request(struct hp_http_req *req)
{
    struct hp_str p = req->path;

    if (hp_str_eq(p, S("/form")))
        return serve_form(req);
    if (hp_str_eq(p, S("/cookies")))
        return serve_cookies(req);
    if (hp_str_eq(p, S("/set-cookie")))
        return serve_set_cookie(req);
    if (hp_str_eq(p, S("/json")))
        return serve_json(req);
    if (hp_str_has_prefix(p, S("/page/")))
        return serve_page(req, (struct hp_str){p.ptr + 6, p.len - 6});
    return hp_http_reply(req, 404, S("text/plain"), "not found\n", 10);
}

static void on_signal(struct hp_signal *s, int signum)
{
    (void)s;
    (void)signum;
    hp_signal_stop(&sigint_w);
    hp_signal_stop(&sigterm_w);
    hp_http_server_shutdown(srv, 1000, NULL);
}

int main(int argc, char **argv)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request,
        .on_head = on_head,
        .on_abort = on_abort,
        .max_body = 64 << 20,
        .listen.host = "127.0.0.1",
    };
    struct hp_loop *loop;
    int err;

    early_reply = getenv("HP_TOOLKIT_EARLY_REPLY") != NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            opts.listen.host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            opts.listen.port = (uint16_t)atoi(argv[i + 1]);
    }
    if (hp_loop_new(&loop, NULL) != 0)
        return 1;
    if ((err = hp_http_server_new(&srv, loop, &opts)) != 0) {
        fprintf(stderr, "toolkit: cannot listen: %s\n", hp_strerror(err));
        return 1;
    }
    hp_signal_init(loop, &sigint_w, on_signal);
    hp_signal_init(loop, &sigterm_w, on_signal);
    if (hp_signal_start(&sigint_w, SIGINT) != 0 || hp_signal_start(&sigterm_w, SIGTERM) != 0)
        return 1;
    printf("toolkit: listening on http://%s:%d/\n", opts.listen.host, hp_http_server_port(srv));
    fflush(stdout);
    err = hp_loop_run(loop);
    if (hp_http_server_free(srv) != 0 || hp_loop_free(loop) != 0)
        return 1;
    return err == 0 ? 0 : 1;
}
