/* A keep-alive reports the loss of its lease when the server goes away and
 * stays away past the lease's TTL.
 *
 *   lease_lost HOST:PORT   grants a 3 s lease and keeps it alive, prints
 *                          "ready", reads one line from stdin (sent once the
 *                          server is down), then expects the loss within
 *                          15 s; prints "N passed, M failed". */
#include <stdio.h>
#include <string.h>

#include "concord.h"

#include "check.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    const char *eps[] = {argv[1]};
    concord_options o = {0};
    o.timeout_seconds = 2;
    concord_client *c = NULL;
    concord_error *err = NULL;
    int64_t lease = 0;
    concord_keep_alive *k = NULL;
    CHECK(concord_client_new(eps, 1, &o, &c, &err) == CONCORD_STATUS_OK, "connect");
    CHECK(c && concord_lease_grant(c, 3, 0, &lease, &err) == CONCORD_STATUS_OK, "grant");
    CHECK(c && concord_keep_alive_start(c, lease, &k, &err) == CONCORD_STATUS_OK, "keep-alive");
    if (k == NULL) {
        printf("%d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    CHECK(!concord_keep_alive_wait_lost(k, 4, NULL), "refreshed past its TTL while the server runs");
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) return 2;
    concord_error *why = NULL;
    CHECK(concord_keep_alive_wait_lost(k, 15, &why), "loss reported while the server is down");
    CHECK(why != NULL && concord_error_get_kind(why) == CONCORD_ERROR_KIND_LEASE_LOST, "kind lease lost: %s",
          why ? concord_error_message(why) : "(none)");
    CHECK(!concord_keep_alive_alive(k), "not alive after the loss");
    concord_error_free(why);
    concord_error_free(err);
    concord_keep_alive_free(k);
    concord_client_free(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
