/*
 * tests/core/test_fs.c - file requests on the pool against real files in a
 * temporary directory: open, fstat, stat, pread, read, close, their errors
 * (ENOENT), cancellation; hp_fs_open_beneath() refusing every way out of
 * its directory (.., absolute paths, symlinks out, at any depth) with
 * openat2 and with the portable walk, and following links that stay
 * inside; the page-cache read and sendfile to a socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

static char dir[PATH_MAX];
static int dirfd_;
static size_t calls;
static struct hp_fs_req *last;

static void on_fs(struct hp_fs_req *req)
{
    calls++;
    last = req;
}

static bool got(void *arg)
{
    return calls >= *(size_t *)arg;
}

static void run_calls(struct hp_loop *loop, size_t want)
{
    ct_run_until(loop, got, &want);
}

static void put_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void put_dir(const char *name)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void put_link(const char *name, const char *target)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/hp-fs-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    calls = 0;
    last = NULL;
    put_dir("root");
    put_dir("root/sub");
    put_file("root/a.txt", "hello, file\n");
    put_file("root/sub/b.txt", "bee\n");
    put_file("secret", "outside\n");
    put_link("root/in", "sub/b.txt");          /* stays inside */
    put_link("root/sub/up", "../a.txt");       /* up, still inside */
    put_link("root/out", "../secret");         /* leaves the root */
    put_link("root/sub/deep", "../../secret"); /* leaves it from below */
    put_link("root/abs", "/etc/hostname");     /* absolute */
    put_link("root/subdir", "sub");            /* a directory link, inside */
    put_link("root/loop", "loop");             /* itself */
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dirfd_ < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    close(dirfd_);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_fs_open_stat_read_close_on_the_pool(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_fs_req req;
    char buf[64];
    int fd;

    (void)state;
    memset(&req, 0, sizeof(req));
    assert_int_equal(hp_fs_openat(loop, &req, dirfd_, "root/a.txt", O_RDONLY, 0, on_fs), 0);
    assert_int_equal(calls, 0);
    run_calls(loop, 1);
    assert_ptr_equal(last, &req);
    assert_int_equal(req.op, HP_FS_OPENAT);
    assert_true(req.result >= 0);
    fd = (int)req.result;
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    assert_int_equal(hp_fs_fstat(loop, &req, fd, on_fs), 0);
    run_calls(loop, 2);
    assert_int_equal(req.result, 0);
    assert_int_equal(req.st.st_size, 12);

    assert_int_equal(hp_fs_pread(loop, &req, fd, buf, sizeof(buf), 7, on_fs), 0);
    run_calls(loop, 3);
    assert_int_equal(req.result, 5);
    assert_memory_equal(buf, "file\n", 5);

    assert_int_equal(hp_fs_pread(loop, &req, fd, buf, 5, -1, on_fs), 0); /* read() */
    run_calls(loop, 4);
    assert_int_equal(req.result, 5);
    assert_memory_equal(buf, "hello", 5);

    assert_int_equal(hp_fs_close(loop, &req, fd, on_fs), 0);
    run_calls(loop, 5);
    assert_int_equal(req.result, 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);

    assert_int_equal(hp_fs_stat(loop, &req, dirfd_, "root/sub/b.txt", 0, on_fs), 0);
    run_calls(loop, 6);
    assert_int_equal(req.result, 0);
    assert_int_equal(req.st.st_size, 4);

    assert_int_equal(hp_fs_openat(loop, &req, dirfd_, "root/none", O_RDONLY, 0, on_fs), 0);
    run_calls(loop, 7);
    assert_int_equal(req.result, -ENOENT);
    assert_int_equal(hp_fs_openat(loop, &req, dirfd_, "x", O_RDONLY, 0, NULL), -EINVAL);
    hp_test_loop_free(loop);
}

static atomic_bool gate;

static void hold(struct hp_work *w)
{
    (void)w;
    while (!atomic_load(&gate))
        sched_yield();
}

static void held_done(struct hp_work *w, int status)
{
    (void)w;
    assert_int_equal(status, 0);
    calls++;
}

static void test_fs_cancelled_request_reports_ecanceled(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_pool_opts one = {.threads = 1};
    struct hp_fs_req reqs[32];
    struct hp_work blocker;
    size_t cancelled = 0;

    (void)state;
    memset(reqs, 0, sizeof(reqs));
    memset(&blocker, 0, sizeof(blocker));
    assert_int_equal(hp_pool_config(loop, &one), 0);
    atomic_store(&gate, false);
    assert_int_equal(hp_work_submit(loop, &blocker, hold, held_done), 0);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(hp_fs_stat(loop, &reqs[i], dirfd_, "root/a.txt", 0, on_fs), 0);
    for (size_t i = 31; i > 0; i--)
        if (hp_fs_cancel(&reqs[i]) == 0)
            cancelled++;
    assert_int_equal(cancelled, 31); /* the only worker is held */
    atomic_store(&gate, true);
    run_calls(loop, 33);
    for (size_t i = 0, c = 0; i < 32; i++) {
        if (reqs[i].result == -ECANCELED)
            c++;
        else
            assert_int_equal(reqs[i].result, 0);
        if (i == 31)
            assert_int_equal(c, cancelled);
    }
    hp_test_loop_free(loop);
}

static void check_beneath(unsigned how)
{
    int root = openat(dirfd_, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    static const char *const refused[] = {
        "../secret", "sub/../../secret", "out",         "sub/deep",
        "abs",       "/etc/hostname",    "subdir/deep", "sub/../..",
    };
    static const char *const allowed[] = {
        "a.txt",        "sub/b.txt",    "in",      "sub/up",
        "subdir/b.txt", "sub/../a.txt", "./a.txt", "sub//b.txt",
    };
    char buf[16];
    int fd;

    assert_true(root >= 0);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        fd = hp_fs_open_beneath(root, refused[i], O_RDONLY, how);
        if (fd >= 0)
            fail_msg("%s was opened (how %u)", refused[i], how);
        assert_int_equal(fd, -EXDEV);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        fd = hp_fs_open_beneath(root, allowed[i], O_RDONLY, how);
        if (fd < 0)
            fail_msg("%s: %s (how %u)", allowed[i], hp_err_name(fd), how);
        assert_true(read(fd, buf, sizeof(buf)) > 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);
    }
    assert_int_equal(hp_fs_open_beneath(root, "none", O_RDONLY, how), -ENOENT);
    assert_int_equal(hp_fs_open_beneath(root, "a.txt/x", O_RDONLY, how), -ENOTDIR);
    assert_int_equal(hp_fs_open_beneath(root, "loop", O_RDONLY, how), -ELOOP);
    fd = hp_fs_open_beneath(root, "sub", O_RDONLY | O_DIRECTORY, how);
    assert_true(fd >= 0);
    close(fd);
    close(root);
}

static void test_fs_open_beneath_refuses_every_way_out(void **state)
{
    (void)state;
    check_beneath(0);
    check_beneath(HP_FS_PORTABLE);
}

static void test_fs_open_beneath_on_the_pool(void **state)
{
    struct hp_loop *loop = ct_loop_new(NULL, NULL, 0);
    struct hp_fs_req req;

    (void)state;
    memset(&req, 0, sizeof(req));
    assert_int_equal(hp_fs_openat_beneath(loop, &req, dirfd_, "root/out", O_RDONLY, on_fs), 0);
    run_calls(loop, 1);
    assert_true(req.result >= 0); /* root/out -> ../secret: still inside dir */
    close((int)req.result);
    assert_int_equal(hp_fs_openat_beneath(loop, &req, dirfd_, "../x", O_RDONLY, on_fs), 0);
    run_calls(loop, 2);
    assert_int_equal(req.result, -EXDEV);
    hp_test_loop_free(loop);
}

static void test_fs_pread_nowait_and_sendfile(void **state)
{
    int fd = openat(dirfd_, "root/a.txt", O_RDONLY | O_CLOEXEC), sv[2];
    int64_t off = 6;
    char buf[64];
    ssize_t n;

    (void)state;
    assert_true(fd >= 0);
    n = hp_fs_pread_nowait(fd, buf, sizeof(buf), 0);
#ifdef __linux__
    assert_int_equal(n, 12); /* just written: in the page cache */
    assert_memory_equal(buf, "hello, file\n", 12);
#else
    assert_int_equal(n, -EAGAIN);
#endif
    hp_test_socketpair(sv);
    n = hp_fs_sendfile(sv[0], fd, &off, 100);
    assert_int_equal(n, 6);
    assert_int_equal(off, 12);
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 6);
    assert_memory_equal(buf, " file\n", 6);
    assert_int_equal(hp_fs_sendfile(sv[0], fd, &off, 100), 0); /* end of file */
    /* Fill the socket: -EAGAIN without moving the offset. */
    {
        int big = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char path[PATH_MAX + 16];
        FILE *f;
        static char chunk[65536];
        int bfd;
        int64_t boff = 0;

        snprintf(path, sizeof(path), "%s/big", dir);
        f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < 64; i++)
            assert_int_equal(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
        fclose(f);
        bfd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(bfd >= 0);
        while ((n = hp_fs_sendfile(sv[0], bfd, &boff, 1 << 22)) > 0)
            continue;
        assert_int_equal(n, -EAGAIN);
        assert_true(boff > 0 && boff < (1 << 22));
        close(bfd);
        close(big);
    }
    close(sv[0]);
    close(sv[1]);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fs_open_stat_read_close_on_the_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_cancelled_request_reports_ecanceled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fs_open_beneath_refuses_every_way_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fs_open_beneath_on_the_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_pread_nowait_and_sendfile, setup, teardown),
    };

    ct_apply_filters();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
