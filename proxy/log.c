/* log.c -- log lines in Redis's format, so operators' tools parse them:
 * "<pid>:<role> <day> <mon> <year> <hh:mm:ss.mmm> <level char> <message>"
 * with level chars '.' debug, '-' verbose, '*' notice, '#' warning.
 * The role char is 'M' (rcproxy plays the server the clients talk to). */
#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static FILE *log_fp;
static conf_loglevel log_level = CONF_LOG_NOTICE;

int px_log_open(const char *path, conf_loglevel level)
{
    log_level = level;
    if (!path || !*path) {
        log_fp = stdout;
        return 0;
    }
    FILE *fp = fopen(path, "a");
    if (!fp) return -1;
    if (log_fp && log_fp != stdout) fclose(log_fp);
    log_fp = fp;
    return 0;
}

void px_log_set_level(conf_loglevel level) { log_level = level; }
int px_log_enabled(conf_loglevel level) { return level >= log_level; }

void px_log(conf_loglevel level, const char *fmt, ...)
{
    if (level < log_level) return;
    FILE *fp = log_fp ? log_fp : stdout;
    static const char marks[] = ".-*#";
    char msg[1024], ts[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t off = strftime(ts, sizeof ts, "%d %b %Y %H:%M:%S.", &tm);
    snprintf(ts + off, sizeof ts - off, "%03d", (int)(tv.tv_usec / 1000));
    fprintf(fp, "%d:M %s %c %s\n", (int)getpid(), ts, marks[level], msg);
    fflush(fp);
}
