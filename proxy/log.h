/* log.h -- Redis-format log lines: "pid:M 21 Nov 2026 23:47:07.123 * text". */
#ifndef PX_LOG_H
#define PX_LOG_H

#include "conf/config.h"

/* Open the log (logfile "" = stdout) with the given level. Returns 0 or -1. */
int px_log_open(const char *path, conf_loglevel level);
void px_log_set_level(conf_loglevel level);
int px_log_enabled(conf_loglevel level);
void px_log(conf_loglevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define px_debug(...) do { if (px_log_enabled(CONF_LOG_DEBUG)) px_log(CONF_LOG_DEBUG, __VA_ARGS__); } while (0)
#define px_verbose(...) do { if (px_log_enabled(CONF_LOG_VERBOSE)) px_log(CONF_LOG_VERBOSE, __VA_ARGS__); } while (0)
#define px_notice(...) px_log(CONF_LOG_NOTICE, __VA_ARGS__)
#define px_warning(...) px_log(CONF_LOG_WARNING, __VA_ARGS__)

#endif
