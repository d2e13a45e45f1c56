/**
 * @file hellepoll.h
 * The core, in one include: loop, IO watchers, timers, signals, TCP, the
 * thread pool and file requests.
 * HTTP users add <hellepoll/http.h>.
 *
 * Threading: a loop and its handles belong to one thread; only
 * hp_loop_post() may be called from another.
 */
#ifndef HP_HELLEPOLL_H
#define HP_HELLEPOLL_H

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/error.h>
#include <hellepoll/fs.h>
#include <hellepoll/io.h>
#include <hellepoll/log.h>
#include <hellepoll/loop.h>
#include <hellepoll/pool.h>
#include <hellepoll/signal.h>
#include <hellepoll/str.h>
#include <hellepoll/tcp.h>
#include <hellepoll/timer.h>

#define HP_VERSION_MAJOR 0
#define HP_VERSION_MINOR 1
#define HP_VERSION_PATCH 0

#endif
