/* contracts_test.c - the pool of registered contracts (gateway/contracts):
 * the lifecycle of a file (HELD by hosts, shared, KEPT once they leave,
 * replaced then, never while another host or --descriptors holds it), the
 * checks that refuse a set whole, served methods and the reflection
 * lookups. Descriptor sets are built here with protobuf-c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts.h"
#include "google/protobuf/descriptor.pb-c.h"

static gw_contracts *pool;
static char why[1024];

/* A set of one file `name` in package t: message M, and when svc is
 * given, a service svc with one method `method` (M -> M) carrying the
 * actor option of kind `kind` (0: no option); deps are its imports. */
typedef struct fspec {
	const char *name, *svc, *method, *msg;
	int kind;
	const char *dep;
} fspec;

static uint8_t *pack_set(const fspec *fs, size_t n, size_t *len)
{
	Google__Protobuf__FileDescriptorProto files[4], *pf[4];
	Google__Protobuf__DescriptorProto msgs[4], *pm[4];
	Google__Protobuf__ServiceDescriptorProto svcs[4], *ps[4];
	Google__Protobuf__MethodDescriptorProto meths[4], *pme[4];
	Google__Protobuf__ServiceOptions opts[4];
	ProtobufCMessageUnknownField uf[4];
	uint8_t actor[4][3];
	char type[4][64];
	char *deps[4][1];
	ck_assert_uint_le(n, 4);
	for (size_t i = 0; i < n; i++) {
		google__protobuf__file_descriptor_proto__init(&files[i]);
		google__protobuf__descriptor_proto__init(&msgs[i]);
		files[i].name = (char *)fs[i].name;
		files[i].package = "t";
		msgs[i].name = (char *)(fs[i].msg ? fs[i].msg : "M");
		pm[i] = &msgs[i];
		files[i].n_message_type = 1;
		files[i].message_type = &pm[i];
		if (fs[i].dep) {
			deps[i][0] = (char *)fs[i].dep;
			files[i].n_dependency = 1;
			files[i].dependency = deps[i];
		}
		if (fs[i].svc) {
			google__protobuf__service_descriptor_proto__init(&svcs[i]);
			google__protobuf__method_descriptor_proto__init(&meths[i]);
			snprintf(type[i], sizeof type[i], ".t.%s", msgs[i].name);
			meths[i].name = (char *)(fs[i].method ? fs[i].method : "Call");
			meths[i].input_type = type[i];
			meths[i].output_type = type[i];
			pme[i] = &meths[i];
			svcs[i].name = (char *)fs[i].svc;
			svcs[i].n_method = 1;
			svcs[i].method = &pme[i];
			if (fs[i].kind) {
				google__protobuf__service_options__init(&opts[i]);
				/* protobuf-c keeps an extension's length prefix in data */
				actor[i][0] = 2;
				actor[i][1] = 0x48; /* ActorOpts.kind (9), varint */
				actor[i][2] = (uint8_t)fs[i].kind;
				uf[i] = (ProtobufCMessageUnknownField){
				    .tag = 4890128,
				    .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
				    .len = 3,
				    .data = actor[i]};
				opts[i].base.n_unknown_fields = 1;
				opts[i].base.unknown_fields = &uf[i];
				svcs[i].options = &opts[i];
			}
			ps[i] = &svcs[i];
			files[i].n_service = 1;
			files[i].service = &ps[i];
		}
		pf[i] = &files[i];
	}
	Google__Protobuf__FileDescriptorSet set = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_SET__INIT;
	set.n_file = n;
	set.file = pf;
	*len = google__protobuf__file_descriptor_set__get_packed_size(&set);
	uint8_t *b = malloc(*len);
	google__protobuf__file_descriptor_set__pack(&set, b);
	return b;
}

static size_t put_varint(uint8_t *p, size_t v)
{
	size_t k = 0;
	do {
		p[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return k;
}

static gw_err add(const void *owner, const fspec *fs, size_t n)
{
	size_t len;
	uint8_t *b = pack_set(fs, n, &len);
	gw_err err = gw_contracts_add(pool, owner, b, len, why, sizeof why);
	free(b);
	return err;
}

static bool serves(const char *path, gw_contract_method *m)
{
	gw_contract_method tmp;
	return gw_contracts_method(pool, path, strlen(path), m ? m : &tmp) == GW_OK;
}

static void setup(void)
{
	gw_contracts_opts o = {.max_set_bytes = 4096};
	ck_assert_int_eq(gw_contracts_create(&pool, &o), GW_OK);
	why[0] = 0;
}

static void teardown(void)
{
	gw_contracts_destroy(pool);
	pool = NULL;
}

static int A, B, C, D; /* host tokens: only their addresses matter */

START_TEST(builtin_files_describe_the_gateway)
{
	gw_bytes_list l;
	ck_assert_int_eq(
	    gw_contracts_file_by_symbol(pool, "spawn.gateway.v1.ActorGateway.Invoke", &l), GW_OK);
	ck_assert_uint_gt(l.n, 3); /* gateway.proto and its imports */
	Google__Protobuf__FileDescriptorProto *f =
	    google__protobuf__file_descriptor_proto__unpack(NULL, l.len[0], l.data[0]);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f->name, "spawn/gateway/v1/gateway.proto");
	google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
	gw_bytes_list_fini(&l);
	ck_assert_int_eq(gw_contracts_extension_numbers(pool, "google.protobuf.ServiceOptions", &l),
	                 GW_OK);
	bool actor = false;
	for (size_t i = 0; i < l.n; i++)
		actor = actor || (l.data[i][0] | l.data[i][1] << 8 | l.data[i][2] << 16) == 4890128;
	ck_assert(actor);
	gw_bytes_list_fini(&l);
	ck_assert_int_eq(
	    gw_contracts_file_by_extension(pool, "google.protobuf.ServiceOptions", 4890128, &l),
	    GW_OK);
	gw_bytes_list_fini(&l);
	ck_assert_int_eq(gw_contracts_file_by_name(pool, "no/such.proto", &l), GW_ENOTFOUND);
	/* No actor service among the built-in files. */
	ck_assert(!serves("/spawn.gateway.v1.ActorGateway/Invoke", NULL));
}
END_TEST

START_TEST(actor_services_are_served_by_path)
{
	fspec f[] = {{.name = "a.proto", .svc = "Counter", .kind = GW_KIND_UNNAMED},
	             {.name = "p.proto", .svc = "Plain", .msg = "P"}};
	ck_assert_int_eq(add(&A, f, 2), GW_OK);
	gw_contract_method m;
	ck_assert(serves("/t.Counter/Call", &m));
	ck_assert_str_eq(m.actor, "Counter");
	ck_assert_str_eq(m.action, "Call");
	ck_assert_str_eq(m.input, "t.M");
	ck_assert_int_eq(m.kind, GW_KIND_UNNAMED);
	ck_assert_uint_eq(m.id_field, 0);          /* M has no field marked actor_id */
	ck_assert(!serves("/t.Plain/Call", NULL)); /* no actor option */
	ck_assert(!serves("/t.Counter/Nope", NULL));
	gw_bytes_list l;
	const char *own[] = {"grpc.health.v1.Health"};
	ck_assert_int_eq(gw_contracts_services(pool, own, 1, &l), GW_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(memcmp(l.data[1], "t.Counter", l.len[1]), 0);
	gw_bytes_list_fini(&l);
}
END_TEST

START_TEST(a_file_is_shared_kept_and_replaced_only_when_nobody_holds_it)
{
	fspec v1 = {.name = "a.proto", .svc = "Svc", .kind = GW_KIND_NAMED};
	fspec v2 = {.name = "a.proto", .svc = "Svc", .method = "Call2", .kind = GW_KIND_NAMED};
	ck_assert_int_eq(add(&A, &v1, 1), GW_OK);
	ck_assert_int_eq(add(&B, &v1, 1), GW_OK); /* the same bytes: shared */
	ck_assert_int_eq(add(&C, &v2, 1), GW_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(why, "a.proto differs"));
	gw_contracts_release(pool, &A);
	ck_assert_int_eq(add(&C, &v2, 1), GW_ECONFLICT); /* B still holds it */
	gw_contracts_release(pool, &B);
	ck_assert(serves("/t.Svc/Call", NULL));   /* KEPT: still served */
	ck_assert_int_eq(add(&C, &v2, 1), GW_OK); /* replaced */
	ck_assert(serves("/t.Svc/Call2", NULL));
	ck_assert(!serves("/t.Svc/Call", NULL));
}
END_TEST

START_TEST(a_hosts_new_set_replaces_its_old_one)
{
	fspec d1 = {.name = "d1.proto", .svc = "One", .kind = GW_KIND_NAMED, .msg = "M1"};
	fspec d1b = {.name = "d1.proto",
	             .svc = "One",
	             .method = "Other",
	             .kind = GW_KIND_NAMED,
	             .msg = "M1"};
	fspec d2 = {.name = "d2.proto", .svc = "Two", .kind = GW_KIND_NAMED, .msg = "M2"};
	ck_assert_int_eq(add(&D, &d1, 1), GW_OK);
	ck_assert_int_eq(add(&D, &d1b, 1), GW_OK); /* its own file: replaced at once */
	ck_assert(serves("/t.One/Other", NULL));
	ck_assert_int_eq(add(&D, &d2, 1), GW_OK); /* d1 no longer D's: KEPT */
	ck_assert(serves("/t.One/Other", NULL));
	ck_assert(serves("/t.Two/Call", NULL));
	ck_assert_int_eq(add(&A, &d1, 1), GW_OK); /* nobody holds d1.proto now */
	ck_assert(serves("/t.One/Call", NULL));
}
END_TEST

START_TEST(descriptors_files_are_never_replaced)
{
	fspec s1 = {.name = "s.proto", .svc = "Static", .kind = GW_KIND_NAMED, .msg = "S"};
	fspec s2 = {
	    .name = "s.proto", .svc = "Static", .method = "X", .kind = GW_KIND_NAMED, .msg = "S"};
	ck_assert_int_eq(add(NULL, &s1, 1), GW_OK);
	ck_assert_int_eq(add(&A, &s2, 1), GW_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(why, "--descriptors"));
	ck_assert_int_eq(add(&A, &s1, 1), GW_OK); /* the same file is fine */
	gw_contracts_release(pool, &A);
	ck_assert_int_eq(add(&B, &s2, 1), GW_ECONFLICT);
}
END_TEST

START_TEST(a_refused_set_changes_nothing)
{
	fspec a = {.name = "a.proto", .svc = "Svc", .kind = GW_KIND_NAMED};
	ck_assert_int_eq(add(&A, &a, 1), GW_OK);
	size_t before = gw_contracts_count(pool);
	/* Another file defining t.Svc (and t.M): a symbol clash. */
	fspec clash[] = {{.name = "new.proto", .svc = "Fresh", .kind = GW_KIND_NAMED, .msg = "N"},
	                 {.name = "x.proto", .svc = "Svc", .kind = GW_KIND_NAMED, .msg = "X"}};
	ck_assert_int_eq(add(&B, clash, 2), GW_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(why, "t.Svc is defined by both"));
	ck_assert_uint_eq(gw_contracts_count(pool), before);
	ck_assert(!serves("/t.Fresh/Call", NULL));
	/* An import nobody has. */
	fspec dep = {.name = "dep.proto", .dep = "nope.proto", .msg = "D"};
	ck_assert_int_eq(add(&B, &dep, 1), GW_EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "dep.proto imports nope.proto"));
	/* Names. */
	fspec bad[] = {{.name = "b.proto", .svc = "bad-name", .kind = 1, .msg = "B"},
	               {.name = "/abs.proto", .msg = "B"},
	               {.name = "c.proto", .msg = "9lives"}};
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(add(&B, &bad[i], 1), GW_EINVAL);
	/* Twice in one set: the same bytes are fine, others not. */
	fspec twice[] = {{.name = "w.proto", .msg = "W"}, {.name = "w.proto", .msg = "W"}};
	ck_assert_int_eq(add(&B, twice, 2), GW_OK);
	fspec twice2[] = {{.name = "v.proto", .msg = "V"}, {.name = "v.proto", .msg = "V2"}};
	ck_assert_int_eq(add(&B, twice2, 2), GW_EINVAL);
	ck_assert(serves("/t.Svc/Call", NULL));
}
END_TEST

START_TEST(malformed_and_oversized_sets_are_refused)
{
	ck_assert_int_eq(
	    gw_contracts_add(pool, &A, (const uint8_t *)"\xff\xff\xff", 3, why, sizeof why),
	    GW_EINVAL);
	uint8_t big[5000] = {0x0a, 0x84, 0x27}; /* a file of 4996 bytes: over 4096 */
	ck_assert_int_eq(gw_contracts_add(pool, &A, big, sizeof big, why, sizeof why), GW_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(why, "over the bound of 4096"));
	/* DescriptorProto.nested_type (3) inside itself, 40 deep: over the
	 * bound of 32 (protobuf-c's unpacker would recurse without one). */
	static uint8_t a[4096], b[4096];
	size_t n = 3;
	memcpy(a, "\x0a\x01x", 3);
	for (int i = 0; i < 40; i++) {
		size_t k = 0;
		memcpy(b, "\x0a\x01m\x1a", 4);
		k = 4;
		k += put_varint(b + k, n);
		memcpy(b + k, a, n);
		n += k;
		memcpy(a, b, n);
	}
	static uint8_t file[4200], set[4300];
	size_t fl = 0, sl = 0;
	memcpy(file,
	       "\x0a\x07"
	       "d.proto"
	       "\x22",
	       10);
	fl = 10 + put_varint(file + 10, n);
	memcpy(file + fl, a, n);
	fl += n;
	set[sl++] = 0x0a;
	sl += put_varint(set + sl, fl);
	memcpy(set + sl, file, fl);
	sl += fl;
	ck_assert_int_eq(gw_contracts_add(pool, &A, set, sl, why, sizeof why), GW_EINVAL);
	ck_assert_msg(strstr(why, "nested more than 32 deep"), "%s", why);
}
END_TEST

/* A mirror that counts what it is shown and refuses on demand. */
typedef struct mirror_log {
	int prepared, committed, aborted;
	size_t last_len;
	bool refuse;
	int *current; /* the committed candidate */
} mirror_log;

static void *m_prepare(void *user, const uint8_t *set, size_t len, const gw_contract_rule *rules,
                       size_t nrules, char *w, size_t wn)
{
	(void)set, (void)rules, (void)nrules;
	mirror_log *l = user;
	l->prepared++;
	l->last_len = len;
	if (l->refuse) {
		snprintf(w, wn, "refused by the test");
		return NULL;
	}
	int *cand = malloc(sizeof *cand);
	*cand = l->prepared;
	return cand;
}

static void m_commit(void *user, void *cand)
{
	mirror_log *l = user;
	l->committed++;
	free(l->current);
	l->current = cand;
}

static void m_abort(void *user, void *cand)
{
	mirror_log *l = user;
	l->aborted++;
	free(cand);
}

START_TEST(a_mirror_sees_every_pool_and_its_refusal_refuses_the_set)
{
	mirror_log l = {0};
	gw_contracts_mirror m = {.version = GW_CONTRACTS_MIRROR_V1,
	                         .prepare = m_prepare,
	                         .commit = m_commit,
	                         .abort = m_abort,
	                         .user = &l};
	gw_contracts_mirror bad = m;
	bad.version = 99;
	ck_assert_int_eq(gw_contracts_set_mirror(pool, &bad, why, sizeof why), GW_EINVAL);
	/* Installed: it is shown the pool held now (the built-in files). */
	ck_assert_int_eq(gw_contracts_set_mirror(pool, &m, why, sizeof why), GW_OK);
	ck_assert_int_eq(l.prepared, 1);
	ck_assert_int_eq(l.committed, 1);
	size_t builtin_len = l.last_len;
	ck_assert_uint_gt(builtin_len, 0);
	fspec a[] = {{.name = "a.proto", .svc = "Counter", .kind = GW_KIND_NAMED}};
	ck_assert_int_eq(add(&A, a, 1), GW_OK);
	ck_assert_int_eq(l.prepared, 2);
	ck_assert_int_eq(*l.current, 2);
	ck_assert_uint_gt(l.last_len, builtin_len); /* the whole pool, a.proto too */
	gw_contract_method cm;
	ck_assert_int_eq(gw_contracts_action(pool, "Counter", "Call", &cm, why, sizeof why), GW_OK);
	ck_assert_str_eq(cm.input, "t.M");
	ck_assert_int_eq(gw_contracts_action(pool, "Counter", "Nope", &cm, why, sizeof why),
	                 GW_ENOTFOUND);
	/* Refused by the mirror: refused whole, the pool unchanged. */
	size_t files = gw_contracts_count(pool);
	l.refuse = true;
	fspec b[] = {{.name = "b.proto", .svc = "Other", .kind = GW_KIND_NAMED, .msg = "N"}};
	ck_assert_int_eq(add(&B, b, 1), GW_EINVAL);
	ck_assert_msg(strstr(why, "do not build for HTTP/JSON: refused by the test"), "%s", why);
	ck_assert_uint_eq(gw_contracts_count(pool), files);
	ck_assert(!serves("/t.Other/Call", NULL));
	ck_assert_int_eq(*l.current, 2); /* still the last committed pool */
	ck_assert_int_eq(l.aborted, 0);
	/* Removed: adds no longer reach it. */
	ck_assert_int_eq(gw_contracts_set_mirror(pool, NULL, why, sizeof why), GW_OK);
	int before = l.prepared;
	ck_assert_int_eq(add(&B, b, 1), GW_OK);
	ck_assert_int_eq(l.prepared, before);
	ck_assert(serves("/t.Other/Call", NULL));
	free(l.current);
}
END_TEST

/* exported: the names of the files of gw_contracts_export's set, in order,
 * joined by ' ' into out; returns the hash it gave (checked against the
 * bytes). */
static uint64_t exported(char *out, size_t n)
{
	uint8_t *b = NULL;
	size_t len = 0;
	uint64_t h = 0;
	ck_assert_int_eq(gw_contracts_export(pool, &b, &len, &h), GW_OK);
	ck_assert_uint_eq(h, gw_contracts_hash(b, len));
	Google__Protobuf__FileDescriptorSet *set =
	    google__protobuf__file_descriptor_set__unpack(NULL, len, b);
	ck_assert_ptr_nonnull(set);
	out[0] = 0;
	for (size_t i = 0; i < set->n_file; i++)
		snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? " " : "",
		         set->file[i]->name);
	google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
	free(b);
	return h;
}

START_TEST(export_holds_the_local_hosts_files_and_peer_sets_are_served_and_withdrawn)
{
	char names[256];
	uint64_t empty = exported(names, sizeof names);
	ck_assert_str_eq(names, ""); /* built-in files are never exported */
	fspec s[] = {{.name = "s.proto", .svc = "Static", .kind = GW_KIND_NAMED, .msg = "S"}};
	ck_assert_int_eq(add(NULL, s, 1), GW_OK); /* --descriptors: every member has its own */
	fspec b[] = {{.name = "b.proto", .svc = "Bee", .kind = GW_KIND_NAMED, .msg = "B"}};
	fspec a[] = {{.name = "a.proto", .svc = "Counter", .kind = GW_KIND_NAMED}};
	ck_assert_int_eq(add(&B, b, 1), GW_OK);
	ck_assert_int_eq(add(&A, a, 1), GW_OK);
	uint64_t h = exported(names, sizeof names);
	ck_assert_str_eq(names, "a.proto b.proto"); /* sorted by name */
	ck_assert_uint_ne(h, empty);
	ck_assert_uint_eq(exported(names, sizeof names), h); /* the same pool, the same hash */
	/* Another member's set: served here, never exported again. */
	fspec p[] = {{.name = "p.proto", .svc = "Remote", .kind = GW_KIND_NAMED, .msg = "R"}};
	size_t len;
	uint8_t *set = pack_set(p, 1, &len);
	ck_assert_int_eq(gw_contracts_add_peer(pool, &D, set, len, why, sizeof why), GW_OK);
	free(set);
	ck_assert(serves("/t.Remote/Call", NULL));
	ck_assert_uint_eq(exported(names, sizeof names), h);
	/* A peer set clashing with a host's file: refused whole. */
	fspec clash[] = {{.name = "a.proto", .svc = "Counter", .kind = GW_KIND_NAMED, .msg = "X"}};
	set = pack_set(clash, 1, &len);
	ck_assert_int_eq(gw_contracts_add_peer(pool, &D, set, len, why, sizeof why), GW_ECONFLICT);
	ck_assert_msg(strstr(why, "a.proto differs"), "%s", why);
	ck_assert_int_eq(gw_contracts_add_peer(pool, NULL, set, len, why, sizeof why), GW_EINVAL);
	free(set);
	ck_assert(serves("/t.Remote/Call", NULL)); /* the peer's last set stays */
	/* The host's own file also held for a peer (same bytes): once the
	 * host leaves, it is no longer this member's to publish. */
	set = pack_set(a, 1, &len);
	ck_assert_int_eq(gw_contracts_add_peer(pool, &C, set, len, why, sizeof why), GW_OK);
	free(set);
	gw_contracts_release(pool, &A);
	exported(names, sizeof names);
	ck_assert_str_eq(names, "b.proto");
	/* Withdrawn: KEPT, still described, and not exported. */
	gw_contracts_release(pool, &D);
	gw_contracts_release(pool, &C);
	ck_assert(serves("/t.Remote/Call", NULL));
	ck_assert(serves("/t.Counter/Call", NULL));
	exported(names, sizeof names);
	ck_assert_str_eq(names, "b.proto");
	gw_contracts_release(pool, &B);
	ck_assert_uint_eq(exported(names, sizeof names), empty);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("contracts");
	TCase *t = tcase_create("pool");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, builtin_files_describe_the_gateway);
	tcase_add_test(t, actor_services_are_served_by_path);
	tcase_add_test(t, a_file_is_shared_kept_and_replaced_only_when_nobody_holds_it);
	tcase_add_test(t, a_hosts_new_set_replaces_its_old_one);
	tcase_add_test(t, descriptors_files_are_never_replaced);
	tcase_add_test(t, a_refused_set_changes_nothing);
	tcase_add_test(t, malformed_and_oversized_sets_are_refused);
	tcase_add_test(t, a_mirror_sees_every_pool_and_its_refusal_refuses_the_set);
	tcase_add_test(t,
	               export_holds_the_local_hosts_files_and_peer_sets_are_served_and_withdrawn);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
