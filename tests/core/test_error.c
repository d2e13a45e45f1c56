/* tests/core/test_error.c - hp_strerror(), hp_err_name() and hp_log_level_name(). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"

struct named {
    int code;
    const char *name;
};

#define NAMED(e) \
    {            \
        -(e), #e \
    }

/* Every errno the core API documents, plus the usual suspects. */
static const struct named errnos[] = {
    NAMED(EPERM),         NAMED(ENOENT),      NAMED(EINTR),        NAMED(EIO),
    NAMED(EBADF),         NAMED(EAGAIN),      NAMED(ENOMEM),       NAMED(EACCES),
    NAMED(EBUSY),         NAMED(EEXIST),      NAMED(EINVAL),       NAMED(ENFILE),
    NAMED(EMFILE),        NAMED(EPIPE),       NAMED(ERANGE),       NAMED(ENOBUFS),
    NAMED(EADDRINUSE),    NAMED(ECONNRESET),  NAMED(ECONNREFUSED), NAMED(ETIMEDOUT),
    NAMED(ECANCELED),     NAMED(EINPROGRESS), NAMED(ENOTCONN),     NAMED(EAFNOSUPPORT),
    NAMED(EADDRNOTAVAIL),
};

static void test_error_names_errno_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
        assert_string_equal(hp_err_name(errnos[i].code), errnos[i].name);
}

static void test_error_names_hellepoll_codes(void **state)
{
    (void)state;
    assert_string_equal(hp_err_name(HP_EOF), "HP_EOF");
    assert_string_equal(hp_err_name(HP_ECLOSED), "HP_ECLOSED");
    assert_string_equal(hp_err_name(HP_ESERVER), "HP_ESERVER");
    assert_string_equal(hp_strerror(HP_ESERVER), "the server answered with an error");
}

static void test_error_unknown_codes_are_named_unknown(void **state)
{
    (void)state;
    assert_string_equal(hp_err_name(-4000), "UNKNOWN");
    assert_string_equal(hp_err_name(-4092), "UNKNOWN");
    assert_string_equal(hp_err_name(INT_MIN), "UNKNOWN");
    assert_string_equal(hp_err_name(-100000), "UNKNOWN");
}

static void test_error_hellepoll_codes_lie_below_every_errno(void **state)
{
    (void)state;
    assert_true(HP_EOF < 0 && HP_ECLOSED < 0);
    assert_true(HP_EOF != HP_ECLOSED);
    for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
        assert_true(HP_EOF < errnos[i].code);
        assert_true(HP_ECLOSED < errnos[i].code);
        assert_true(HP_ESERVER < errnos[i].code);
    }
}

static void test_error_strerror_gives_each_errno_its_own_description(void **state)
{
    enum { N = sizeof(errnos) / sizeof(errnos[0]) };
    const char *s[N];

    (void)state;
    for (size_t i = 0; i < N; i++) {
        s[i] = hp_strerror(errnos[i].code);
        assert_non_null(s[i]);
        assert_true(strlen(s[i]) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s[i], s[j]);
        assert_string_not_equal(s[i], hp_strerror(HP_EOF));
        assert_string_not_equal(s[i], hp_strerror(HP_ECLOSED));
    }
}

static void test_error_strerror_describes_hellepoll_codes(void **state)
{
    const char *eof = hp_strerror(HP_EOF), *closed = hp_strerror(HP_ECLOSED);

    (void)state;
    assert_non_null(eof);
    assert_non_null(closed);
    assert_true(strlen(eof) > 0);
    assert_true(strlen(closed) > 0);
    assert_string_not_equal(eof, closed);
    /* Stable: the strings are static. */
    assert_ptr_equal(hp_strerror(HP_EOF), eof);
}

static void test_error_strerror_never_returns_null(void **state)
{
    static const int odd[] = {0, 1, -1, -4000, -4093, -4096, INT_MIN, INT_MAX, -100000};

    (void)state;
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_non_null(hp_strerror(odd[i]));
        assert_non_null(hp_err_name(odd[i]));
    }
}

static void test_error_log_levels_have_names(void **state)
{
    (void)state;
    assert_string_equal(hp_log_level_name(HP_LOG_ERROR), "error");
    assert_string_equal(hp_log_level_name(HP_LOG_WARN), "warn");
    assert_string_equal(hp_log_level_name(HP_LOG_INFO), "info");
    assert_string_equal(hp_log_level_name(HP_LOG_DEBUG), "debug");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names_errno_values),
        cmocka_unit_test(test_error_names_hellepoll_codes),
        cmocka_unit_test(test_error_unknown_codes_are_named_unknown),
        cmocka_unit_test(test_error_hellepoll_codes_lie_below_every_errno),
        cmocka_unit_test(test_error_strerror_gives_each_errno_its_own_description),
        cmocka_unit_test(test_error_strerror_describes_hellepoll_codes),
        cmocka_unit_test(test_error_strerror_never_returns_null),
        cmocka_unit_test(test_error_log_levels_have_names),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/error", tests, NULL, NULL);
}
