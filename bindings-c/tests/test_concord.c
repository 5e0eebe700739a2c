/* libconcord's C tests against a running server: every call, a watch
 * callback receiving puts and deletes in order, cancel from another
 * thread, a lease lost, errors with etcd's code and message, and a panic
 * inside the library coming back as a status.
 *
 *   test_concord HOST:PORT        prints one line per check, then
 *                                 "N passed, M failed"; exit 1 on failure. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "concord.h"

#include "check.h"

static concord_client *connect_to(const char *endpoint) {
    const char *eps[] = {endpoint};
    concord_options o = {0};
    o.timeout_seconds = 10;
    concord_client *c = NULL;
    concord_error *err = NULL;
    concord_status s = concord_client_new(eps, 1, &o, &c, &err);
    CHECK(s == CONCORD_STATUS_OK && c != NULL, "connect: %s", concord_error_message(err));
    concord_error_free(err);
    return c;
}

static void test_kv(concord_client *c) {
    concord_error *err = NULL;
    int64_t rev = 0;
    const uint8_t key[] = {'b', 'i', 'n', 0, 'k'};
    const uint8_t val[] = {0, 0xff, 'v'};
    CHECK(concord_put(c, key, sizeof key, val, sizeof val, 0, &rev, &err) == CONCORD_STATUS_OK && rev > 1,
          "put: %s", concord_error_message(err));
    concord_kvs *kvs = NULL;
    CHECK(concord_range(c, key, sizeof key, NULL, 0, NULL, &kvs, &err) == CONCORD_STATUS_OK, "range");
    CHECK(kvs->len == 1 && kvs->kvs[0].key_len == sizeof key && memcmp(kvs->kvs[0].key, key, sizeof key) == 0 &&
              kvs->kvs[0].value_len == sizeof val && memcmp(kvs->kvs[0].value, val, sizeof val) == 0 &&
              kvs->kvs[0].mod_revision == rev && kvs->kvs[0].version == 1,
          "range answer holds the NUL-bearing key and value");
    concord_kvs_free(kvs);

    for (int i = 0; i < 5; i++) {
        char k[16];
        snprintf(k, sizeof k, "p/%d", i);
        concord_put(c, (const uint8_t *)k, strlen(k), (const uint8_t *)"x", 1, 0, NULL, NULL);
    }
    concord_range_options ro = {0};
    ro.prefix = true;
    ro.limit = 2;
    CHECK(concord_range(c, (const uint8_t *)"p/", 2, NULL, 0, &ro, &kvs, &err) == CONCORD_STATUS_OK, "prefix");
    CHECK(kvs->len == 2 && kvs->count == 5 && kvs->more && kvs->revision >= rev, "limit, count, more");
    concord_kvs_free(kvs);
    CHECK(concord_range(c, (const uint8_t *)"p/1", 3, (const uint8_t *)"p/3", 3, NULL, &kvs, &err) ==
                  CONCORD_STATUS_OK &&
              kvs->len == 2,
          "range [p/1, p/3)");
    concord_kvs_free(kvs);
    int64_t deleted = 0;
    CHECK(concord_delete(c, (const uint8_t *)"p/", 2, NULL, 0, true, &deleted, &err) == CONCORD_STATUS_OK &&
              deleted == 5,
          "delete prefix: %lld", (long long)deleted);
    CHECK(concord_delete(c, key, sizeof key, NULL, 0, false, &deleted, NULL) == CONCORD_STATUS_OK && deleted == 1,
          "delete key");
    CHECK(concord_range(c, key, sizeof key, NULL, 0, NULL, &kvs, NULL) == CONCORD_STATUS_OK && kvs->len == 0,
          "gone");
    concord_kvs_free(kvs);
}

static void test_errors(concord_client *c) {
    concord_error *err = NULL;
    CHECK(concord_put(c, NULL, 0, (const uint8_t *)"v", 1, 0, NULL, &err) == CONCORD_STATUS_ERROR, "empty key");
    CHECK(concord_error_code(err) == 3 && concord_error_get_kind(err) == CONCORD_ERROR_KIND_INVALID_ARGUMENT &&
              strcmp(concord_error_message(err), "etcdserver: key is not provided") == 0,
          "etcd's code and message: %d %s", concord_error_code(err), concord_error_message(err));
    concord_error_free(err);
    err = NULL;
    CHECK(concord_put(NULL, (const uint8_t *)"k", 1, NULL, 0, 0, NULL, &err) == CONCORD_STATUS_NULL_ARGUMENT &&
              strstr(concord_error_message(err), "client") != NULL,
          "NULL client");
    concord_error_free(err);
    err = NULL;
    CHECK(concord_put(c, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, 0x1234, NULL, &err) ==
                  CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_LEASE_NOT_FOUND,
          "unknown lease");
    concord_error_free(err);
    err = NULL;
    CHECK(concord_test_panic(&err) == CONCORD_STATUS_PANIC && concord_error_get_kind(err) == CONCORD_ERROR_KIND_PANIC &&
              strstr(concord_error_message(err), "deliberate panic") != NULL,
          "a panic comes back as a status");
    concord_error_free(err);
    concord_error_free(NULL);
    concord_kvs_free(NULL);
    concord_watch_free(NULL);
    concord_keep_alive_free(NULL);
}

struct seen {
    pthread_mutex_t mu;
    char log[4096];
    atomic_int events;
    atomic_int errors;
};

static void on_event(void *user_data, const concord_event *ev, const concord_error *err) {
    struct seen *s = user_data;
    if (ev == NULL) {
        atomic_fetch_add(&s->errors, 1);
        return;
    }
    pthread_mutex_lock(&s->mu);
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%s %.*s=%.*s;", ev->is_delete ? "DEL" : "PUT", (int)ev->kv.key_len,
             (const char *)ev->kv.key, (int)ev->kv.value_len, (const char *)ev->kv.value);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->events, 1);
    (void)err;
}

static void wait_events(struct seen *s, int n) {
    for (int i = 0; i < 500 && atomic_load(&s->events) < n; i++) usleep(10000);
}

static void *cancel_later(void *w) {
    usleep(50000);
    concord_watch_cancel(w);
    return NULL;
}

static void test_watch(concord_client *c) {
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    concord_watch *w = NULL;
    concord_error *err = NULL;
    CHECK(concord_watch_start(c, (const uint8_t *)"w/", 2, NULL, 0, true, 0, false, on_event, &s, &w, &err) ==
              CONCORD_STATUS_OK,
          "watch: %s", concord_error_message(err));
    concord_put(c, (const uint8_t *)"w/a", 3, (const uint8_t *)"1", 1, 0, NULL, NULL);
    concord_put(c, (const uint8_t *)"w/a", 3, (const uint8_t *)"2", 1, 0, NULL, NULL);
    concord_delete(c, (const uint8_t *)"w/a", 3, NULL, 0, false, NULL, NULL);
    concord_put(c, (const uint8_t *)"other", 5, (const uint8_t *)"x", 1, 0, NULL, NULL);
    wait_events(&s, 3);
    pthread_mutex_lock(&s.mu);
    CHECK(strcmp(s.log, "PUT w/a=1;PUT w/a=2;DEL w/a=;") == 0, "events in order: %s", s.log);
    pthread_mutex_unlock(&s.mu);

    /* Cancel from another thread; after it returns, no more callbacks. */
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, w);
    pthread_join(t, NULL);
    int before = atomic_load(&s.events);
    concord_put(c, (const uint8_t *)"w/b", 3, (const uint8_t *)"3", 1, 0, NULL, NULL);
    usleep(300000);
    CHECK(atomic_load(&s.events) == before, "no callback after cancel");
    concord_watch_free(w);

}

static void test_lease(concord_client *c) {
    concord_error *err = NULL;
    int64_t lease = 0, ttl = 0;
    CHECK(concord_lease_grant(c, 5, 0, &lease, &err) == CONCORD_STATUS_OK && lease != 0, "grant");
    CHECK(concord_put(c, (const uint8_t *)"l", 1, (const uint8_t *)"v", 1, lease, NULL, &err) == CONCORD_STATUS_OK,
          "put with lease");
    CHECK(concord_lease_ttl(c, lease, &ttl, &err) == CONCORD_STATUS_OK && ttl > 0 && ttl <= 5, "ttl %lld",
          (long long)ttl);
    concord_keep_alive *k = NULL;
    CHECK(concord_keep_alive_start(c, lease, &k, &err) == CONCORD_STATUS_OK && concord_keep_alive_alive(k),
          "keep-alive");
    CHECK(!concord_keep_alive_wait_lost(k, 0.3, NULL), "not lost while refreshed");
    /* Revoked elsewhere: the keep-alive reports the loss at its next refresh. */
    CHECK(concord_lease_revoke(c, lease, &err) == CONCORD_STATUS_OK, "revoke");
    concord_error *why = NULL;
    CHECK(concord_keep_alive_wait_lost(k, 5, &why) && concord_error_get_kind(why) == CONCORD_ERROR_KIND_LEASE_LOST,
          "loss reported: %s", concord_error_message(why));
    CHECK(!concord_keep_alive_alive(k), "not alive after the loss");
    concord_error_free(why);
    concord_keep_alive_free(k);
    CHECK(concord_lease_ttl(c, lease, &ttl, &err) == CONCORD_STATUS_OK && ttl == -1, "gone: %lld", (long long)ttl);
    concord_kvs *kvs = NULL;
    concord_range(c, (const uint8_t *)"l", 1, NULL, 0, NULL, &kvs, NULL);
    CHECK(kvs != NULL && kvs->len == 0, "its key went with it");
    concord_kvs_free(kvs);
}

struct shared {
    concord_client *c;
    int id;
};

static void *writer(void *arg) {
    struct shared *sh = arg;
    for (int i = 0; i < 20; i++) {
        char k[32];
        snprintf(k, sizeof k, "t/%d/%d", sh->id, i);
        if (concord_put(sh->c, (const uint8_t *)k, strlen(k), (const uint8_t *)"v", 1, 0, NULL, NULL) !=
            CONCORD_STATUS_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(concord_client *c) {
    pthread_t t[8];
    struct shared sh[8];
    for (int i = 0; i < 8; i++) {
        sh[i] = (struct shared){c, i};
        pthread_create(&t[i], NULL, writer, &sh[i]);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    concord_range_options ro = {0};
    ro.prefix = true;
    ro.count_only = true;
    concord_kvs *kvs = NULL;
    concord_range(c, (const uint8_t *)"t/", 2, NULL, 0, &ro, &kvs, NULL);
    CHECK(bad == 0 && kvs && kvs->count == 160, "one client, eight threads");
    concord_kvs_free(kvs);
}

static void test_cluster(concord_client *c) {
    concord_status_info st;
    concord_error *err = NULL;
    CHECK(concord_server_status(c, &st, &err) == CONCORD_STATUS_OK && st.leader != 0 && st.revision > 1 &&
              strncmp(st.version, "3.", 2) == 0,
          "status: %s", concord_error_message(err));
    concord_members *ms = NULL;
    CHECK(concord_member_list(c, &ms, &err) == CONCORD_STATUS_OK && ms->len == 1 &&
              ms->members[0].id == st.member_id && ms->members[0].client_urls_len == 1 &&
              strncmp(ms->members[0].client_urls[0], "http://127.0.0.1:", 17) == 0,
          "members");
    concord_members_free(ms);
}

static void test_lock_election(concord_client *c) {
    concord_error *err = NULL;
    int64_t lease = 0, other = 0, token = 0;
    concord_lease_grant(c, 10, 0, &lease, NULL);
    concord_lease_grant(c, 10, 0, &other, NULL);
    concord_buf *key = NULL, *key2 = NULL;
    CHECK(concord_lock(c, (const uint8_t *)"lk", 2, lease, -1, &key, &token, &err) == CONCORD_STATUS_OK &&
              key->len > 3 && memcmp(key->data, "lk/", 3) == 0 && token > 0,
          "lock: %s", concord_error_message(err));
    CHECK(concord_lock(c, (const uint8_t *)"lk", 2, other, 0.3, &key2, NULL, &err) == CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_TIMEOUT,
          "a second holder waits, then times out");
    concord_error_free(err);
    err = NULL;
    CHECK(concord_unlock(c, key->data, key->len, &err) == CONCORD_STATUS_OK, "unlock");
    concord_buf_free(key);
    CHECK(concord_lock(c, (const uint8_t *)"lk", 2, other, 5, &key2, NULL, &err) == CONCORD_STATUS_OK, "relock");
    concord_unlock(c, key2->data, key2->len, NULL);
    concord_buf_free(key2);

    concord_leader *l = NULL;
    concord_kvs *kvs = NULL;
    CHECK(concord_election_leader(c, (const uint8_t *)"el", 2, &kvs, &err) == CONCORD_STATUS_OK && kvs->len == 0,
          "no leader yet");
    concord_kvs_free(kvs);
    CHECK(concord_campaign(c, (const uint8_t *)"el", 2, lease, (const uint8_t *)"a", 1, -1, &l, &err) ==
                  CONCORD_STATUS_OK &&
              concord_leader_revision(l) > 0,
          "campaign");
    CHECK(concord_proclaim(c, l, (const uint8_t *)"b", 1, &err) == CONCORD_STATUS_OK, "proclaim");
    concord_election_leader(c, (const uint8_t *)"el", 2, &kvs, NULL);
    CHECK(kvs && kvs->len == 1 && kvs->kvs[0].value_len == 1 && kvs->kvs[0].value[0] == 'b', "leader's value");
    concord_kvs_free(kvs);
    CHECK(concord_resign(c, l, &err) == CONCORD_STATUS_OK, "resign");
    CHECK(concord_proclaim(c, l, (const uint8_t *)"c", 1, &err) == CONCORD_STATUS_ERROR &&
              strcmp(concord_error_message(err), "election: not leader") == 0,
          "no longer leader");
    concord_error_free(err);
    concord_leader_free(l);
    concord_lease_revoke(c, lease, NULL);
    concord_lease_revoke(c, other, NULL);
}

static void test_txn(concord_client *c) {
    concord_error *err = NULL;
    concord_put(c, (const uint8_t *)"tx", 2, (const uint8_t *)"on", 2, 0, NULL, NULL);
    concord_compare cmp = {0};
    cmp.target = CONCORD_COMPARE_TARGET_VALUE;
    cmp.result = CONCORD_COMPARE_RESULT_EQUAL;
    cmp.key = (const uint8_t *)"tx";
    cmp.key_len = 2;
    cmp.value = (const uint8_t *)"on";
    cmp.value_len = 2;
    concord_op ok[2] = {{0}, {0}};
    ok[0].op_type = CONCORD_OP_TYPE_PUT;
    ok[0].key = (const uint8_t *)"tx";
    ok[0].key_len = 2;
    ok[0].value = (const uint8_t *)"off";
    ok[0].value_len = 3;
    ok[1].op_type = CONCORD_OP_TYPE_GET;
    ok[1].key = (const uint8_t *)"tx";
    ok[1].key_len = 2;
    concord_op ko = {0};
    ko.op_type = CONCORD_OP_TYPE_DELETE;
    ko.key = (const uint8_t *)"tx";
    ko.key_len = 2;
    bool succeeded = false;
    concord_txn_result *r = NULL;
    CHECK(concord_txn(c, &cmp, 1, ok, 2, &ko, 1, &succeeded, &r, &err) == CONCORD_STATUS_OK && succeeded &&
              r->len == 2 && r->results[0].op_type == CONCORD_OP_TYPE_PUT && r->results[1].kvs != NULL &&
              r->results[1].kvs->len == 1 && r->results[1].kvs->kvs[0].value_len == 3,
          "txn: compare held, put then get: %s", concord_error_message(err));
    concord_txn_result_free(r);
    r = NULL;
    CHECK(concord_txn(c, &cmp, 1, ok, 2, &ko, 1, &succeeded, &r, &err) == CONCORD_STATUS_OK && !succeeded &&
              r->len == 1 && r->results[0].op_type == CONCORD_OP_TYPE_DELETE && r->results[0].deleted == 1,
          "txn: compare failed, the failure branch ran");
    concord_txn_result_free(r);
    cmp.target = CONCORD_COMPARE_TARGET_VERSION;
    cmp.number = 0;
    CHECK(concord_txn(c, &cmp, 1, NULL, 0, NULL, 0, &succeeded, NULL, &err) == CONCORD_STATUS_OK && succeeded,
          "txn: version 0 after the delete");
    CHECK(concord_txn(c, NULL, 1, NULL, 0, NULL, 0, NULL, NULL, &err) == CONCORD_STATUS_NULL_ARGUMENT, "NULL compares");
    concord_error_free(err);
    err = NULL;

    /* A nested transaction: the outer compare holds, the inner one fails. */
    concord_put(c, (const uint8_t *)"tx", 2, (const uint8_t *)"a", 1, 0, NULL, NULL);
    concord_compare inner_cmp = cmp; /* version("tx") == 0: false now */
    concord_op inner_ko = {0};
    inner_ko.op_type = CONCORD_OP_TYPE_PUT;
    inner_ko.key = (const uint8_t *)"tx-nested";
    inner_ko.key_len = 9;
    inner_ko.value = (const uint8_t *)"yes";
    inner_ko.value_len = 3;
    concord_txn_request inner = {&inner_cmp, 1, NULL, 0, &inner_ko, 1};
    concord_op nested = {0};
    nested.op_type = CONCORD_OP_TYPE_TXN;
    nested.txn = &inner;
    r = NULL;
    CHECK(concord_txn(c, NULL, 0, &nested, 1, NULL, 0, &succeeded, &r, &err) == CONCORD_STATUS_OK && succeeded &&
              r->len == 1 && r->results[0].op_type == CONCORD_OP_TYPE_TXN && r->results[0].txn != NULL &&
              !r->results[0].txn->succeeded && r->results[0].txn->len == 1 &&
              r->results[0].txn->results[0].op_type == CONCORD_OP_TYPE_PUT,
          "nested txn: its own branch and answers: %s", concord_error_message(err));
    concord_txn_result_free(r);
    concord_kvs *kvs = NULL;
    concord_range(c, (const uint8_t *)"tx-nested", 9, NULL, 0, NULL, &kvs, NULL);
    CHECK(kvs != NULL && kvs->len == 1, "nested txn: its put happened");
    concord_kvs_free(kvs);
    nested.txn = NULL;
    CHECK(concord_txn(c, NULL, 0, &nested, 1, NULL, 0, NULL, NULL, &err) == CONCORD_STATUS_NULL_ARGUMENT,
          "nested txn without its request");
    concord_error_free(err);
    err = NULL;
    /* A loop of pointers is refused, not followed. */
    concord_op loop = {0};
    concord_txn_request self = {NULL, 0, &loop, 1, NULL, 0};
    loop.op_type = CONCORD_OP_TYPE_TXN;
    loop.txn = &self;
    CHECK(concord_txn(c, NULL, 0, &loop, 1, NULL, 0, NULL, NULL, &err) == CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_INVALID_ARGUMENT,
          "a txn that contains itself: %s", concord_error_message(err));
    concord_error_free(err);
    concord_delete(c, (const uint8_t *)"tx", 2, NULL, 0, true, NULL, NULL);

    /* Range options: sort, from_key, revision bounds. */
    int64_t first = 0;
    concord_put(c, (const uint8_t *)"s/a", 3, (const uint8_t *)"3", 1, 0, &first, NULL);
    concord_put(c, (const uint8_t *)"s/b", 3, (const uint8_t *)"1", 1, 0, NULL, NULL);
    concord_put(c, (const uint8_t *)"s/c", 3, (const uint8_t *)"2", 1, 0, NULL, NULL);
    concord_range_options o = {0};
    o.prefix = true;
    o.sort_target = CONCORD_SORT_TARGET_VALUE;
    o.sort_order = CONCORD_SORT_ORDER_DESCEND;
    kvs = NULL;
    CHECK(concord_range(c, (const uint8_t *)"s/", 2, NULL, 0, &o, &kvs, &err) == CONCORD_STATUS_OK && kvs->len == 3 &&
              kvs->kvs[0].value[0] == '3' && kvs->kvs[1].value[0] == '2' && kvs->kvs[2].value[0] == '1',
          "range sorted by value, descending");
    concord_kvs_free(kvs);
    memset(&o, 0, sizeof o);
    o.prefix = true;
    o.min_mod_revision = first + 1;
    kvs = NULL;
    CHECK(concord_range(c, (const uint8_t *)"s/", 2, NULL, 0, &o, &kvs, &err) == CONCORD_STATUS_OK && kvs->len == 2,
          "range with min_mod_revision");
    concord_kvs_free(kvs);
    memset(&o, 0, sizeof o);
    o.from_key = true;
    o.keys_only = true;
    kvs = NULL;
    CHECK(concord_range(c, (const uint8_t *)"s/b", 3, NULL, 0, &o, &kvs, &err) == CONCORD_STATUS_OK && kvs->len >= 2 &&
              memcmp(kvs->kvs[0].key, "s/b", 3) == 0 && kvs->kvs[0].value_len == 0,
          "range from_key, keys only");
    concord_kvs_free(kvs);
    concord_delete(c, (const uint8_t *)"s/", 2, NULL, 0, true, NULL, NULL);
}

static concord_client *connect_as(const char *endpoint, const char *user, const char *password,
                                  concord_error **err) {
    const char *eps[] = {endpoint};
    concord_options o = {0};
    o.timeout_seconds = 10;
    o.user = user;
    o.password = password;
    concord_client *c = NULL;
    if (concord_client_new(eps, 1, &o, &c, err) != CONCORD_STATUS_OK) return NULL;
    return c;
}

static int has_name(const concord_strings *l, const char *name) {
    for (size_t i = 0; l != NULL && i < l->len; i++)
        if (strcmp(l->items[i], name) == 0) return 1;
    return 0;
}

#define OK(call) ((call) == CONCORD_STATUS_OK)

/* Users, roles, permissions, enable/disable; leaves auth off and nothing behind. */
static void test_auth(concord_client *c, const char *endpoint) {
    concord_error *err = NULL;
    CHECK(OK(concord_user_add(c, "root", "rootpw", &err)) && OK(concord_role_add(c, "root", &err)) &&
              OK(concord_user_grant_role(c, "root", "root", &err)),
          "root user and role: %s", concord_error_message(err));
    CHECK(OK(concord_user_add(c, "alice", "alicepw", &err)) && OK(concord_role_add(c, "app", &err)) &&
              OK(concord_role_grant_permission(c, "app", CONCORD_PERMISSION_READWRITE, (const uint8_t *)"app/", 4,
                                               (const uint8_t *)"app0", 4, &err)) &&
              OK(concord_user_grant_role(c, "alice", "app", &err)),
          "alice may read and write app/: %s", concord_error_message(err));
    concord_strings *users = NULL, *roles = NULL, *alice_roles = NULL;
    concord_permissions *perms = NULL;
    CHECK(OK(concord_user_list(c, &users, &err)) && has_name(users, "alice") && has_name(users, "root"),
          "user list");
    CHECK(OK(concord_role_list(c, &roles, &err)) && has_name(roles, "app") && has_name(roles, "root"), "role list");
    CHECK(OK(concord_user_get(c, "alice", &alice_roles, &err)) && alice_roles->len == 1 &&
              strcmp(alice_roles->items[0], "app") == 0,
          "alice's roles");
    CHECK(OK(concord_role_get(c, "app", &perms, &err)) && perms->len == 1 &&
              perms->items[0].permission == CONCORD_PERMISSION_READWRITE && perms->items[0].key_len == 4 &&
              memcmp(perms->items[0].key, "app/", 4) == 0 && perms->items[0].range_end_len == 4 &&
              memcmp(perms->items[0].range_end, "app0", 4) == 0,
          "app's permission");
    concord_strings_free(users);
    concord_strings_free(roles);
    concord_strings_free(alice_roles);
    concord_permissions_free(perms);
    CHECK(concord_user_add(c, NULL, "x", &err) == CONCORD_STATUS_NULL_ARGUMENT, "NULL user name");
    concord_error_free(err);
    err = NULL;

    CHECK(OK(concord_auth_enable(c, &err)), "auth enable: %s", concord_error_message(err));
    CHECK(concord_put(c, (const uint8_t *)"app/x", 5, (const uint8_t *)"1", 1, 0, NULL, &err) != CONCORD_STATUS_OK,
          "no credentials, no write");
    concord_error_free(err);
    err = NULL;
    CHECK(connect_as(endpoint, "alice", "wrong", &err) == NULL &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_AUTH_FAILED &&
              strcmp(concord_error_message(err), "etcdserver: authentication failed, invalid user ID or password") == 0,
          "a wrong password: %s", concord_error_message(err));
    concord_error_free(err);
    err = NULL;
    concord_client *alice = connect_as(endpoint, "alice", "alicepw", &err);
    concord_client *root = connect_as(endpoint, "root", "rootpw", &err);
    CHECK(alice != NULL && root != NULL, "users connect: %s", concord_error_message(err));
    if (alice == NULL || root == NULL) return;
    CHECK(OK(concord_put(alice, (const uint8_t *)"app/x", 5, (const uint8_t *)"1", 1, 0, NULL, &err)),
          "alice writes app/x: %s", concord_error_message(err));
    CHECK(concord_put(alice, (const uint8_t *)"other", 5, (const uint8_t *)"1", 1, 0, NULL, &err) ==
                  CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_PERMISSION_DENIED &&
              strcmp(concord_error_message(err), "etcdserver: permission denied") == 0,
          "alice may not write elsewhere: %s", concord_error_message(err));
    concord_error_free(err);
    err = NULL;
    CHECK(concord_role_add(alice, "mine", &err) == CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_PERMISSION_DENIED,
          "only root administers");
    concord_error_free(err);
    err = NULL;
    CHECK(OK(concord_role_revoke_permission(root, "app", (const uint8_t *)"app/", 4, (const uint8_t *)"app0", 4,
                                            &err)),
          "revoke: %s", concord_error_message(err));
    CHECK(concord_put(alice, (const uint8_t *)"app/x", 5, (const uint8_t *)"2", 1, 0, NULL, &err) ==
                  CONCORD_STATUS_ERROR &&
              concord_error_get_kind(err) == CONCORD_ERROR_KIND_PERMISSION_DENIED,
          "after the revoke alice may not write: %s", concord_error_message(err));
    concord_error_free(err);
    err = NULL;
    CHECK(OK(concord_user_change_password(root, "alice", "newpw", &err)) &&
              OK(concord_user_revoke_role(root, "alice", "app", &err)),
          "change password, revoke role: %s", concord_error_message(err));
    CHECK(OK(concord_auth_disable(root, &err)), "auth disable: %s", concord_error_message(err));
    CHECK(OK(concord_user_delete(c, "alice", &err)) && OK(concord_role_delete(c, "app", &err)) &&
              OK(concord_user_delete(c, "root", &err)) && OK(concord_role_delete(c, "root", &err)),
          "clean up: %s", concord_error_message(err));
    concord_error_free(err);
    concord_client_free(alice);
    concord_client_free(root);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    concord_client *c = connect_to(argv[1]);
    if (c == NULL) return 1;
    test_kv(c);
    test_errors(c);
    test_watch(c);
    test_lease(c);
    test_threads(c);
    test_cluster(c);
    test_lock_election(c);
    test_txn(c);
    test_auth(c, argv[1]);
    concord_client_free(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
