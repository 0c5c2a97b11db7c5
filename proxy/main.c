/* main.c -- rcproxy [config-file] [--directive value]... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conf/config.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "replication/sentinel.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: rcproxy [/path/to/rcproxy.conf] [--directive value...]\n"
            "       rcproxy --help\n"
            "       rcproxy --version\n"
            "\n"
            "rcproxy is a Redis-compatible replicated cache proxy: clients connect to it\n"
            "as to Redis; it sends writes to the leader and spreads reads over replicas.\n"
            "\n"
            "Examples:\n"
            "       rcproxy conf/rcproxy.conf\n"
            "       rcproxy --port 6380 --leader 127.0.0.1:6379 --replica 127.0.0.1:6390\n"
            "       rcproxy conf/rcproxy.conf --loglevel verbose\n"
            "\n"
            "Every directive of the config file can be given as --directive value.\n"
            "See conf/rcproxy.conf for all of them, with their defaults.\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v"))) {
        printf("rcproxy v=%s malloc=%s bits=%d\n", RCPROXY_VERSION,
#ifdef HAVE_JEMALLOC
               "jemalloc",
#else
               "libc",
#endif
               (int)(sizeof(void *) * 8));
        return 0;
    }

    static conf cfg;
    static px_ctx ctx;
    char err[CONF_ERR_MAX], warn[CONF_ERR_MAX] = "";
    conf_init_defaults(&cfg);
    if (conf_load_args(&cfg, argc, argv, err, sizeof err) < 0 ||
        conf_validate(&cfg, err, sizeof err, warn, sizeof warn) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (px_log_open(cfg.logfile, cfg.loglevel) < 0) {
        fprintf(stderr, "Can't open the log file %s\n", cfg.logfile);
        return 1;
    }
    if (warn[0]) px_warning("%s", warn);
    if (cfg.pidfile[0]) {
        FILE *fp = fopen(cfg.pidfile, "w");
        if (fp) {
            fprintf(fp, "%d\n", (int)getpid());
            fclose(fp);
        }
    }

    if (cfg.sentinel_count > 0) {
        /* the leader and replicas come from Sentinel */
        repl_sentinel_view view;
        if (repl_sentinel_query_sync(cfg.sentinels, cfg.sentinel_count, cfg.sentinel_master,
                                     cfg.sentinel_password, cfg.backend_password, 2000, &view,
                                     err, sizeof err) < 0) {
            px_warning("Could not learn the leader of '%s' from Sentinel: %s", cfg.sentinel_master, err);
            return 1;
        }
        cfg.leader = view.leader;
        memcpy(cfg.replicas, view.replicas, sizeof view.replicas);
        cfg.replica_count = view.replica_count;
        px_notice("Sentinel: leader of '%s' is %s:%d, with %d replica%s", cfg.sentinel_master,
                  cfg.leader.host, cfg.leader.port, cfg.replica_count, cfg.replica_count == 1 ? "" : "s");
    }

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (px_server_init(&ctx, loop, &cfg, err, sizeof err) < 0 ||
        px_server_listen(&ctx, err, sizeof err) < 0) {
        px_warning("%s", err);
        return 1;
    }
    ctx.argc = argc;
    ctx.argv = argv;
    px_notice("rcproxy version=%s, pid=%d, just started", RCPROXY_VERSION, (int)getpid());
    int rc = px_server_run(&ctx);
    px_server_free(&ctx);
    if (cfg.pidfile[0]) unlink(cfg.pidfile);
    return rc;
}
