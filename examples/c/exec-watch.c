/* exec-watch: the guides' `etcdctl exec-watch` on libconcord. Watches a key
 * (or, with --prefix, every key under it) and runs a command for each
 * change, one at a time, in revision order, with the change in its
 * environment:
 *
 *   ETCD_WATCH_ACTION      "put" or "delete"
 *   ETCD_WATCH_EVENT_TYPE  "PUT" or "DELETE" (etcdctl v3's name)
 *   ETCD_WATCH_KEY, ETCD_WATCH_VALUE, ETCD_WATCH_REVISION
 *
 * The watch resumes after a member restart from the last revision it
 * handled: no change is skipped or repeated. SIGINT/SIGTERM stop it.
 *
 *   exec-watch [--endpoints host:port,...] [--prefix] [--rev N] KEY -- COMMAND [ARG...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concord.h"

static char **command;
static volatile int failed;

static void setenv_n(const char *name, const uint8_t *bytes, size_t len) {
    char *s = strndup((const char *)bytes, len); /* a value with NULs is cut at the first */
    setenv(name, s ? s : "", 1);
    free(s);
}

static void on_event(void *user_data, const concord_event *ev, const concord_error *err) {
    (void)user_data;
    if (ev == NULL) {
        fprintf(stderr, "exec-watch: watch ended: %s\n", concord_error_message(err));
        failed = 1;
        kill(getpid(), SIGTERM);
        return;
    }
    char rev[32];
    snprintf(rev, sizeof rev, "%lld", (long long)ev->kv.mod_revision);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ETCD_WATCH_ACTION", ev->is_delete ? "delete" : "put", 1);
        setenv("ETCD_WATCH_EVENT_TYPE", ev->is_delete ? "DELETE" : "PUT", 1);
        setenv_n("ETCD_WATCH_KEY", ev->kv.key, ev->kv.key_len);
        setenv_n("ETCD_WATCH_VALUE", ev->kv.value, ev->kv.value_len);
        setenv("ETCD_WATCH_REVISION", rev, 1);
        execvp(command[0], command);
        fprintf(stderr, "exec-watch: %s: %s\n", command[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        fprintf(stderr, "exec-watch: fork: %s\n", strerror(errno));
        return;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

static int usage(void) {
    fprintf(stderr, "usage: exec-watch [--endpoints host:port,...] [--prefix] [--rev N] KEY -- COMMAND [ARG...]\n");
    return 2;
}

int main(int argc, char **argv) {
    char *endpoints = "127.0.0.1:2379";
    int prefix = 0;
    long long start = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--prefix") == 0) {
            prefix = 1;
        } else if (strcmp(argv[i], "--endpoints") == 0 && i + 1 < argc) {
            endpoints = argv[++i];
        } else if (strcmp(argv[i], "--rev") == 0 && i + 1 < argc) {
            start = atoll(argv[++i]);
        } else {
            return usage();
        }
    }
    if (i + 2 >= argc || strcmp(argv[i + 1], "--") != 0) return usage();
    const char *key = argv[i];
    command = &argv[i + 2];

    const char *eps[16];
    size_t n = 0;
    for (char *tok = strtok(endpoints, ","); tok && n < 16; tok = strtok(NULL, ",")) eps[n++] = tok;

    /* Signals are taken by sigwait below, not by the library's threads. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    concord_options o = {0};
    o.timeout_seconds = 10;
    concord_client *c = NULL;
    concord_error *err = NULL;
    if (concord_client_new(eps, n, &o, &c, &err) != CONCORD_STATUS_OK) {
        fprintf(stderr, "exec-watch: %s\n", concord_error_message(err));
        return 1;
    }
    concord_watch *w = NULL;
    if (concord_watch_start(c, (const uint8_t *)key, strlen(key), NULL, 0, prefix, start, false, on_event, NULL, &w,
                            &err) != CONCORD_STATUS_OK) {
        fprintf(stderr, "exec-watch: %s\n", concord_error_message(err));
        return 1;
    }
    fprintf(stderr, "exec-watch: watching %s%s\n", key, prefix ? " (prefix)" : "");
    int sig;
    sigwait(&stop, &sig);
    concord_watch_free(w);
    concord_client_free(c);
    return failed;
}
