/* Concord's Perl module: converts Perl values to libconcord calls and
 * back; errors become Concord::Error exceptions. Watch events arrive on
 * libconcord's thread: they are copied into a queue here and handed to
 * Perl only from the Perl thread ($watch->wait, Concord::dispatch), with a
 * pipe that becomes readable when events wait (for AnyEvent and friends). */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "concord.h"

/* Dies with a Concord::Error carrying code, kind and message; frees err. */
static void die_with(pTHX_ concord_status s, concord_error *err) {
    HV *hv = newHV();
    hv_stores(hv, "code", newSViv(concord_error_code(err)));
    hv_stores(hv, "kind", newSViv((IV)concord_error_get_kind(err)));
    hv_stores(hv, "message", newSVpv(concord_error_message(err), 0));
    hv_stores(hv, "status", newSViv((IV)s));
    concord_error_free(err);
    croak_sv(sv_bless(newRV_noinc((SV *)hv), gv_stashpv("Concord::Error", GV_ADD)));
}

static SV *kv_to_hv(pTHX_ const concord_kv *kv) {
    HV *hv = newHV();
    hv_stores(hv, "key", newSVpvn((const char *)kv->key, kv->key_len));
    hv_stores(hv, "value", newSVpvn((const char *)kv->value, kv->value_len));
    hv_stores(hv, "create_revision", newSViv(kv->create_revision));
    hv_stores(hv, "mod_revision", newSViv(kv->mod_revision));
    hv_stores(hv, "version", newSViv(kv->version));
    hv_stores(hv, "lease", newSViv(kv->lease));
    return newRV_noinc((SV *)hv);
}

/* One queued event (or the error that ended the watch). */
struct item {
    struct item *next;
    int is_delete, has_prev;
    char *key, *value, *prev_value;
    size_t key_len, value_len, prev_len;
    int64_t create_revision, mod_revision, version, lease;
    int is_error, err_code, err_kind;
    char *err_message;
};

struct pwatch {
    concord_watch *watch;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct item *head, *tail;
    int fds[2];
};

static char *dup_bytes(const uint8_t *p, size_t n) {
    char *s = malloc(n ? n : 1);
    if (s && n) memcpy(s, p, n);
    return s;
}

static void on_event(void *user, const concord_event *ev, const concord_error *err) {
    struct pwatch *w = user;
    struct item *it = calloc(1, sizeof *it);
    if (!it) return;
    if (ev == NULL) {
        it->is_error = 1;
        it->err_code = concord_error_code(err);
        it->err_kind = (int)concord_error_get_kind(err);
        it->err_message = strdup(concord_error_message(err));
    } else {
        it->is_delete = ev->is_delete;
        it->key = dup_bytes(ev->kv.key, ev->kv.key_len);
        it->key_len = ev->kv.key_len;
        it->value = dup_bytes(ev->kv.value, ev->kv.value_len);
        it->value_len = ev->kv.value_len;
        it->create_revision = ev->kv.create_revision;
        it->mod_revision = ev->kv.mod_revision;
        it->version = ev->kv.version;
        it->lease = ev->kv.lease;
        it->has_prev = ev->has_prev_kv;
        if (ev->has_prev_kv) {
            it->prev_value = dup_bytes(ev->prev_kv.value, ev->prev_kv.value_len);
            it->prev_len = ev->prev_kv.value_len;
        }
    }
    pthread_mutex_lock(&w->mu);
    if (w->tail) w->tail->next = it; else w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    ssize_t r = write(w->fds[1], "x", 1);
    (void)r;
}

static void free_item(struct item *it) {
    free(it->key);
    free(it->value);
    free(it->prev_value);
    free(it->err_message);
    free(it);
}

/* Takes the next item, waiting up to `timeout` seconds (< 0: no limit). */
static struct item *take(struct pwatch *w, double timeout) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout >= 0) {
        until.tv_sec += (time_t)timeout;
        until.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    }
    pthread_mutex_lock(&w->mu);
    while (!w->head) {
        int rc = timeout < 0 ? pthread_cond_wait(&w->cond, &w->mu) : pthread_cond_timedwait(&w->cond, &w->mu, &until);
        if (rc != 0) break;
    }
    struct item *it = w->head;
    if (it) {
        w->head = it->next;
        if (!w->head) w->tail = NULL;
        char buf[64];
        ssize_t r = read(w->fds[0], buf, 1);
        (void)r;
    }
    pthread_mutex_unlock(&w->mu);
    return it;
}


/* Transactions from Concord.pm's normalized arrays:
 *   compare: [target, result, key, range_end|undef, number, value|undef]
 *   op:      [type, key, value|undef, range_end|undef, prefix, lease, txn]
 *            where txn (type 3) is [compares, success, failure].
 * Everything is allocated on Perl's save stack (freed when the call's
 * scope ends, also when it dies); byte pointers point into the Perl
 * strings, alive during the call. */
static concord_txn_request *build_txn(pTHX_ AV *compares, AV *success, AV *failure, int depth);

static void build_ops(pTHX_ AV *src, concord_op *ops, int depth) {
    for (SSize_t i = 0; i <= av_len(src); i++) {
        AV *a = (AV *)SvRV(*av_fetch(src, i, 0));
        STRLEN l;
        ops[i].op_type = (concord_op_type)SvIV(*av_fetch(a, 0, 0));
        if (ops[i].op_type == CONCORD_OP_TYPE_TXN) {
            AV *t = (AV *)SvRV(*av_fetch(a, 6, 0));
            ops[i].txn = build_txn(aTHX_ (AV *)SvRV(*av_fetch(t, 0, 0)), (AV *)SvRV(*av_fetch(t, 1, 0)),
                                   (AV *)SvRV(*av_fetch(t, 2, 0)), depth + 1);
            continue;
        }
        ops[i].key = (const uint8_t *)SvPVbyte(*av_fetch(a, 1, 0), l);
        ops[i].key_len = l;
        SV *v = *av_fetch(a, 2, 0);
        if (SvOK(v)) { ops[i].value = (const uint8_t *)SvPVbyte(v, l); ops[i].value_len = l; }
        SV *e = *av_fetch(a, 3, 0);
        if (SvOK(e)) { ops[i].range_end = (const uint8_t *)SvPVbyte(e, l); ops[i].range_end_len = l; }
        ops[i].prefix = SvTRUE(*av_fetch(a, 4, 0));
        ops[i].lease = SvIV(*av_fetch(a, 5, 0));
    }
}

static concord_txn_request *build_txn(pTHX_ AV *compares, AV *success, AV *failure, int depth) {
    if (depth > 32) croak("Concord: transactions nest deeper than 32");
    SSize_t nc = av_len(compares) + 1, ns = av_len(success) + 1, nf = av_len(failure) + 1;
    concord_txn_request *t;
    concord_compare *cmp;
    concord_op *ok, *ko;
    Newxz(t, 1, concord_txn_request);
    SAVEFREEPV(t);
    Newxz(cmp, nc + 1, concord_compare);
    SAVEFREEPV(cmp);
    Newxz(ok, ns + 1, concord_op);
    SAVEFREEPV(ok);
    Newxz(ko, nf + 1, concord_op);
    SAVEFREEPV(ko);
    for (SSize_t i = 0; i < nc; i++) {
        AV *a = (AV *)SvRV(*av_fetch(compares, i, 0));
        STRLEN l;
        cmp[i].target = (concord_compare_target)SvIV(*av_fetch(a, 0, 0));
        cmp[i].result = (concord_compare_result)SvIV(*av_fetch(a, 1, 0));
        cmp[i].key = (const uint8_t *)SvPVbyte(*av_fetch(a, 2, 0), l);
        cmp[i].key_len = l;
        SV *e = *av_fetch(a, 3, 0);
        if (SvOK(e)) { cmp[i].range_end = (const uint8_t *)SvPVbyte(e, l); cmp[i].range_end_len = l; }
        cmp[i].number = SvIV(*av_fetch(a, 4, 0));
        SV *v = *av_fetch(a, 5, 0);
        if (SvOK(v)) { cmp[i].value = (const uint8_t *)SvPVbyte(v, l); cmp[i].value_len = l; }
    }
    build_ops(aTHX_ success, ok, depth);
    build_ops(aTHX_ failure, ko, depth);
    t->compares = cmp; t->compares_len = nc;
    t->success = ok; t->success_len = ns;
    t->failure = ko; t->failure_len = nf;
    return t;
}

static SV *txn_to_hv(pTHX_ const concord_txn_result *r) {
    static const char *types[] = {"put", "get", "delete", "txn"};
    AV *responses = newAV();
    for (size_t i = 0; i < r->len; i++) {
        const concord_op_result *o = &r->results[i];
        HV *hv = newHV();
        hv_stores(hv, "type", newSVpv(types[o->op_type <= 3 ? o->op_type : 0], 0));
        if (o->op_type == CONCORD_OP_TYPE_GET && o->kvs != NULL) {
            AV *list = newAV();
            for (size_t j = 0; j < o->kvs->len; j++) av_push(list, kv_to_hv(aTHX_ &o->kvs->kvs[j]));
            hv_stores(hv, "kvs", newRV_noinc((SV *)list));
            hv_stores(hv, "count", newSViv(o->kvs->count));
        } else if (o->op_type == CONCORD_OP_TYPE_TXN && o->txn != NULL) {
            hv_stores(hv, "txn", txn_to_hv(aTHX_ o->txn));
        } else if (o->op_type == CONCORD_OP_TYPE_DELETE) {
            hv_stores(hv, "deleted", newSViv(o->deleted));
            hv_stores(hv, "revision", newSViv(o->revision));
        } else {
            hv_stores(hv, "revision", newSViv(o->revision));
        }
        av_push(responses, newRV_noinc((SV *)hv));
    }
    HV *out = newHV();
    hv_stores(out, "succeeded", newSViv(r->succeeded ? 1 : 0));
    hv_stores(out, "revision", newSViv(r->revision));
    hv_stores(out, "responses", newRV_noinc((SV *)responses));
    return newRV_noinc((SV *)out);
}

MODULE = Concord    PACKAGE = Concord    PREFIX = cx_

PROTOTYPES: DISABLE

IV
cx__new(endpoints, user, password, timeout)
    AV *endpoints
    SV *user
    SV *password
    double timeout
  CODE:
    SSize_t n = av_len(endpoints) + 1;
    const char **eps = NULL;
    Newx(eps, n > 0 ? n : 1, const char *);
    for (SSize_t i = 0; i < n; i++) {
        SV **e = av_fetch(endpoints, i, 0);
        eps[i] = e ? SvPV_nolen(*e) : "";
    }
    concord_options o;
    memset(&o, 0, sizeof o);
    o.timeout_seconds = timeout;
    o.user = SvOK(user) ? SvPV_nolen(user) : NULL;
    o.password = SvOK(password) ? SvPV_nolen(password) : NULL;
    concord_client *c = NULL;
    concord_error *err = NULL;
    concord_status s = concord_client_new(eps, (size_t)n, &o, &c, &err);
    Safefree(eps);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = PTR2IV(c);
  OUTPUT:
    RETVAL

void
cx__free(c)
    IV c
  CODE:
    concord_client_free(INT2PTR(concord_client *, c));

IV
cx__put(c, key, value, lease)
    IV c
    SV *key
    SV *value
    IV lease
  CODE:
    STRLEN kl, vl;
    const char *k = SvPVbyte(key, kl), *v = SvPVbyte(value, vl);
    int64_t rev = 0;
    concord_error *err = NULL;
    concord_status s = concord_put(INT2PTR(concord_client *, c), (const uint8_t *)k, kl, (const uint8_t *)v, vl,
                                   lease, &rev, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = rev;
  OUTPUT:
    RETVAL

SV *
cx__range(c, key, range_end, opts)
    IV c
    SV *key
    SV *range_end
    HV *opts
  CODE:
    /* opts: Concord.pm's normalized options (numbers; missing: 0). */
    STRLEN kl, el = 0;
    const char *k = SvPVbyte(key, kl);
    const char *e = SvOK(range_end) ? SvPVbyte(range_end, el) : NULL;
    concord_range_options o;
    memset(&o, 0, sizeof o);
#define OPT(name) (hv_fetchs(opts, #name, 0) ? SvIV(*hv_fetchs(opts, #name, 0)) : 0)
    o.prefix = OPT(prefix) != 0; o.limit = OPT(limit); o.revision = OPT(revision);
    o.serializable = OPT(serializable) != 0; o.keys_only = OPT(keys_only) != 0;
    o.count_only = OPT(count_only) != 0; o.from_key = OPT(from_key) != 0;
    o.sort_target = (concord_sort_target)OPT(sort_target); o.sort_order = (concord_sort_order)OPT(sort_order);
    o.min_mod_revision = OPT(min_mod_revision); o.max_mod_revision = OPT(max_mod_revision);
    o.min_create_revision = OPT(min_create_revision); o.max_create_revision = OPT(max_create_revision);
#undef OPT
    concord_kvs *kvs = NULL;
    concord_error *err = NULL;
    concord_status s = concord_range(INT2PTR(concord_client *, c), (const uint8_t *)k, kl, (const uint8_t *)e, el,
                                     &o, &kvs, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    AV *list = newAV();
    for (size_t i = 0; i < kvs->len; i++) av_push(list, kv_to_hv(aTHX_ &kvs->kvs[i]));
    HV *hv = newHV();
    hv_stores(hv, "kvs", newRV_noinc((SV *)list));
    hv_stores(hv, "count", newSViv(kvs->count));
    hv_stores(hv, "more", newSViv(kvs->more ? 1 : 0));
    hv_stores(hv, "revision", newSViv(kvs->revision));
    concord_kvs_free(kvs);
    RETVAL = newRV_noinc((SV *)hv);
  OUTPUT:
    RETVAL

IV
cx__delete(c, key, range_end, prefix)
    IV c
    SV *key
    SV *range_end
    int prefix
  CODE:
    STRLEN kl, el = 0;
    const char *k = SvPVbyte(key, kl);
    const char *e = SvOK(range_end) ? SvPVbyte(range_end, el) : NULL;
    int64_t deleted = 0;
    concord_error *err = NULL;
    concord_status s = concord_delete(INT2PTR(concord_client *, c), (const uint8_t *)k, kl, (const uint8_t *)e, el,
                                      prefix, &deleted, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = deleted;
  OUTPUT:
    RETVAL

IV
cx__lease_grant(c, ttl, id)
    IV c
    IV ttl
    IV id
  CODE:
    int64_t lease = 0;
    concord_error *err = NULL;
    concord_status s = concord_lease_grant(INT2PTR(concord_client *, c), ttl, id, &lease, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = lease;
  OUTPUT:
    RETVAL

void
cx__lease_revoke(c, id)
    IV c
    IV id
  CODE:
    concord_error *err = NULL;
    concord_status s = concord_lease_revoke(INT2PTR(concord_client *, c), id, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);

IV
cx__lease_ttl(c, id)
    IV c
    IV id
  CODE:
    int64_t ttl = 0;
    concord_error *err = NULL;
    concord_status s = concord_lease_ttl(INT2PTR(concord_client *, c), id, &ttl, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = ttl;
  OUTPUT:
    RETVAL

IV
cx__keep_alive(c, id)
    IV c
    IV id
  CODE:
    concord_keep_alive *k = NULL;
    concord_error *err = NULL;
    concord_status s = concord_keep_alive_start(INT2PTR(concord_client *, c), id, &k, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = PTR2IV(k);
  OUTPUT:
    RETVAL

SV *
cx__keep_alive_lost(k, timeout)
    IV k
    double timeout
  CODE:
    concord_error *err = NULL;
    if (concord_keep_alive_wait_lost(INT2PTR(concord_keep_alive *, k), timeout, &err)) {
        RETVAL = newSVpv(concord_error_message(err), 0);
        concord_error_free(err);
    } else {
        RETVAL = &PL_sv_undef;
    }
  OUTPUT:
    RETVAL

void
cx__keep_alive_free(k)
    IV k
  CODE:
    concord_keep_alive_free(INT2PTR(concord_keep_alive *, k));

IV
cx__watch(c, key, range_end, prefix, start_revision, prev_kv)
    IV c
    SV *key
    SV *range_end
    int prefix
    IV start_revision
    int prev_kv
  CODE:
    STRLEN kl, el = 0;
    const char *k = SvPVbyte(key, kl);
    const char *e = SvOK(range_end) ? SvPVbyte(range_end, el) : NULL;
    struct pwatch *w = calloc(1, sizeof *w);
    if (!w) croak("out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pipe(w->fds) != 0) { free(w); croak("pipe failed"); }
    fcntl(w->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(w->fds[1], F_SETFL, O_NONBLOCK);
    concord_error *err = NULL;
    concord_status s = concord_watch_start(INT2PTR(concord_client *, c), (const uint8_t *)k, kl, (const uint8_t *)e,
                                           el, prefix, start_revision, prev_kv, on_event, w, &w->watch, &err);
    if (s != CONCORD_STATUS_OK) {
        close(w->fds[0]); close(w->fds[1]); free(w);
        die_with(aTHX_ s, err);
    }
    RETVAL = PTR2IV(w);
  OUTPUT:
    RETVAL

SV *
cx__watch_next(wp, timeout)
    IV wp
    double timeout
  CODE:
    struct pwatch *w = INT2PTR(struct pwatch *, wp);
    struct item *it = take(w, timeout);
    if (!it) {
        RETVAL = &PL_sv_undef;
    } else if (it->is_error) {
        HV *hv = newHV();
        hv_stores(hv, "code", newSViv(it->err_code));
        hv_stores(hv, "kind", newSViv(it->err_kind));
        hv_stores(hv, "message", newSVpv(it->err_message ? it->err_message : "", 0));
        free_item(it);
        croak_sv(sv_bless(newRV_noinc((SV *)hv), gv_stashpv("Concord::Error", GV_ADD)));
    } else {
        HV *kv = newHV();
        hv_stores(kv, "key", newSVpvn(it->key, it->key_len));
        hv_stores(kv, "value", newSVpvn(it->value, it->value_len));
        hv_stores(kv, "create_revision", newSViv(it->create_revision));
        hv_stores(kv, "mod_revision", newSViv(it->mod_revision));
        hv_stores(kv, "version", newSViv(it->version));
        hv_stores(kv, "lease", newSViv(it->lease));
        HV *ev = newHV();
        hv_stores(ev, "type", newSVpv(it->is_delete ? "DELETE" : "PUT", 0));
        hv_stores(ev, "kv", newRV_noinc((SV *)kv));
        if (it->has_prev) hv_stores(ev, "prev_value", newSVpvn(it->prev_value, it->prev_len));
        free_item(it);
        RETVAL = newRV_noinc((SV *)ev);
    }
  OUTPUT:
    RETVAL

int
cx__watch_fd(wp)
    IV wp
  CODE:
    RETVAL = (INT2PTR(struct pwatch *, wp))->fds[0];
  OUTPUT:
    RETVAL

void
cx__watch_cancel(wp)
    IV wp
  CODE:
    concord_watch_cancel((INT2PTR(struct pwatch *, wp))->watch);

void
cx__watch_free(wp)
    IV wp
  CODE:
    struct pwatch *w = INT2PTR(struct pwatch *, wp);
    concord_watch_free(w->watch);
    struct item *it = w->head;
    while (it) { struct item *n = it->next; free_item(it); it = n; }
    close(w->fds[0]); close(w->fds[1]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w);

SV *
cx__status(c)
    IV c
  CODE:
    concord_status_info st;
    concord_error *err = NULL;
    concord_status s = concord_server_status(INT2PTR(concord_client *, c), &st, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    HV *hv = newHV();
    hv_stores(hv, "version", newSVpv(st.version, 0));
    hv_stores(hv, "db_size", newSViv(st.db_size));
    hv_stores(hv, "db_size_in_use", newSViv(st.db_size_in_use));
    hv_stores(hv, "leader", newSVuv(st.leader));
    hv_stores(hv, "member_id", newSVuv(st.member_id));
    hv_stores(hv, "cluster_id", newSVuv(st.cluster_id));
    hv_stores(hv, "raft_index", newSVuv(st.raft_index));
    hv_stores(hv, "raft_term", newSVuv(st.raft_term));
    hv_stores(hv, "revision", newSViv(st.revision));
    hv_stores(hv, "is_learner", newSViv(st.is_learner ? 1 : 0));
    RETVAL = newRV_noinc((SV *)hv);
  OUTPUT:
    RETVAL

SV *
cx__members(c)
    IV c
  CODE:
    concord_members *ms = NULL;
    concord_error *err = NULL;
    concord_status s = concord_member_list(INT2PTR(concord_client *, c), &ms, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    AV *list = newAV();
    for (size_t i = 0; i < ms->len; i++) {
        const concord_member *m = &ms->members[i];
        HV *hv = newHV();
        AV *cu = newAV(), *pu = newAV();
        for (size_t j = 0; j < m->client_urls_len; j++) av_push(cu, newSVpv(m->client_urls[j], 0));
        for (size_t j = 0; j < m->peer_urls_len; j++) av_push(pu, newSVpv(m->peer_urls[j], 0));
        hv_stores(hv, "id", newSVuv(m->id));
        hv_stores(hv, "name", newSVpv(m->name, 0));
        hv_stores(hv, "client_urls", newRV_noinc((SV *)cu));
        hv_stores(hv, "peer_urls", newRV_noinc((SV *)pu));
        hv_stores(hv, "is_learner", newSViv(m->is_learner ? 1 : 0));
        av_push(list, newRV_noinc((SV *)hv));
    }
    concord_members_free(ms);
    RETVAL = newRV_noinc((SV *)list);
  OUTPUT:
    RETVAL

void
cx__lock(c, name, lease, timeout)
    IV c
    SV *name
    IV lease
    double timeout
  PPCODE:
    STRLEN nl;
    const char *n = SvPVbyte(name, nl);
    concord_buf *key = NULL;
    int64_t rev = 0;
    concord_error *err = NULL;
    concord_status s = concord_lock(INT2PTR(concord_client *, c), (const uint8_t *)n, nl, lease, timeout, &key, &rev,
                                    &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    SV *k = newSVpvn((const char *)key->data, key->len);
    concord_buf_free(key);
    EXTEND(SP, 2);
    PUSHs(sv_2mortal(k));
    PUSHs(sv_2mortal(newSViv(rev)));

void
cx__unlock(c, key)
    IV c
    SV *key
  CODE:
    STRLEN kl;
    const char *k = SvPVbyte(key, kl);
    concord_error *err = NULL;
    concord_status s = concord_unlock(INT2PTR(concord_client *, c), (const uint8_t *)k, kl, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);

void
cx__admin(c, op, a, b)
    IV c
    int op
    SV *a
    SV *b
  CODE:
    /* The auth calls that take names only; `op` numbers them as
     * Concord.pm's %ADMIN does. */
    concord_client *cl = INT2PTR(concord_client *, c);
    const char *x = SvOK(a) ? SvPVutf8_nolen(a) : NULL;
    const char *y = SvOK(b) ? SvPVutf8_nolen(b) : NULL;
    concord_error *err = NULL;
    concord_status s;
    switch (op) {
    case 0: s = concord_auth_enable(cl, &err); break;
    case 1: s = concord_auth_disable(cl, &err); break;
    case 2: s = concord_user_add(cl, x, y, &err); break;
    case 3: s = concord_user_delete(cl, x, &err); break;
    case 4: s = concord_user_change_password(cl, x, y, &err); break;
    case 5: s = concord_user_grant_role(cl, x, y, &err); break;
    case 6: s = concord_user_revoke_role(cl, x, y, &err); break;
    case 7: s = concord_role_add(cl, x, &err); break;
    case 8: s = concord_role_delete(cl, x, &err); break;
    default: croak("Concord: unknown admin call %d", op);
    }
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);

void
cx__role_permission(c, grant, role, perm, key, range_end)
    IV c
    int grant
    SV *role
    int perm
    SV *key
    SV *range_end
  CODE:
    STRLEN kl, el = 0;
    const char *k = SvPVbyte(key, kl);
    const char *e = SvOK(range_end) ? SvPVbyte(range_end, el) : NULL;
    const char *r = SvOK(role) ? SvPVutf8_nolen(role) : NULL;
    concord_error *err = NULL;
    concord_status s = grant
        ? concord_role_grant_permission(INT2PTR(concord_client *, c), r, (concord_permission)perm,
                                        (const uint8_t *)k, kl, (const uint8_t *)e, el, &err)
        : concord_role_revoke_permission(INT2PTR(concord_client *, c), r, (const uint8_t *)k, kl,
                                         (const uint8_t *)e, el, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);

SV *
cx__names(c, which, name)
    IV c
    int which
    SV *name
  CODE:
    /* 0: users, 1: roles, 2: the roles of user `name`. */
    concord_client *cl = INT2PTR(concord_client *, c);
    const char *n = SvOK(name) ? SvPVutf8_nolen(name) : NULL;
    concord_strings *l = NULL;
    concord_error *err = NULL;
    concord_status s = which == 0 ? concord_user_list(cl, &l, &err)
                     : which == 1 ? concord_role_list(cl, &l, &err)
                                  : concord_user_get(cl, n, &l, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    AV *av = newAV();
    for (size_t i = 0; i < l->len; i++) {
        SV *sv = newSVpv(l->items[i], 0);
        SvUTF8_on(sv);
        av_push(av, sv);
    }
    concord_strings_free(l);
    RETVAL = newRV_noinc((SV *)av);
  OUTPUT:
    RETVAL

SV *
cx__role_get(c, name)
    IV c
    SV *name
  CODE:
    concord_permissions *l = NULL;
    concord_error *err = NULL;
    const char *n = SvOK(name) ? SvPVutf8_nolen(name) : NULL;
    concord_status s = concord_role_get(INT2PTR(concord_client *, c), n, &l, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    static const char *names[] = {"read", "write", "readwrite"};
    AV *av = newAV();
    for (size_t i = 0; i < l->len; i++) {
        const concord_permission_entry *p = &l->items[i];
        HV *hv = newHV();
        hv_stores(hv, "type", newSVpv(names[p->permission <= 2 ? p->permission : 2], 0));
        hv_stores(hv, "key", newSVpvn((const char *)p->key, p->key_len));
        hv_stores(hv, "range_end", newSVpvn((const char *)p->range_end, p->range_end_len));
        av_push(av, newRV_noinc((SV *)hv));
    }
    concord_permissions_free(l);
    RETVAL = newRV_noinc((SV *)av);
  OUTPUT:
    RETVAL

SV *
cx__txn(c, compares, success, failure)
    IV c
    AV *compares
    AV *success
    AV *failure
  CODE:
    concord_txn_request *t = build_txn(aTHX_ compares, success, failure, 0);
    concord_txn_result *r = NULL;
    concord_error *err = NULL;
    concord_status s = concord_txn(INT2PTR(concord_client *, c), t->compares, t->compares_len, t->success,
                                   t->success_len, t->failure, t->failure_len, NULL, &r, &err);
    if (s != CONCORD_STATUS_OK) die_with(aTHX_ s, err);
    RETVAL = txn_to_hv(aTHX_ r);
    concord_txn_result_free(r);
  OUTPUT:
    RETVAL
