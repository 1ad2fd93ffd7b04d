/* fuzz_state.c - libFuzzer target: the state envelope the runtime keeps in
 * the statestore (gateway/runtime/state.c): a serialized
 * spawn.actors.ActorState (tags + Any) followed by the fields 100 / 101 of
 * spawn.gateway.v1.StoredState (outbox of side effects, applied
 * idempotency keys), as gwi_encode_state writes it.
 *
 * Input: the plaintext of a stored row. gwi_decode_state splits it into an
 * actor's state, tags and extra; what decodes must be a fixed point of
 * encode + decode (the runtime saves what it loaded), and the outbox and
 * applied keys are read as outbox.c reads them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "log.h"
#include "runtime_int.h"

static void actor_fini(gw_actor *a)
{
	gw_blob_rele(a->state);
	gwi_ext_free(a); /* the tags and outbox it decoded */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	gw_log_set_level(GW_LOG_ERROR + 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_blob *stored = gw_blob_create(NULL, data, size);
	if (!stored)
		abort();
	gw_actor a;
	memset(&a, 0, sizeof a);
	gw_err e = gwi_decode_state(&a, stored);
	gw_blob_rele(stored);
	if (e != GW_OK) {
		if (e != GW_ECORRUPT) {
			fprintf(stderr, "gwi_decode_state: %s\n", gw_strerror(e));
			abort();
		}
		actor_fini(&a);
		return 0;
	}
	/* outbox.c reads the applied keys and the outbox from extra. */
	(void)gwi_outbox_applied(&a, "fz/counter@1#0");
	/* A row with unknown fields in it (e.g. a field number 0, which
	 * protobuf-c keeps but cannot read back once packed) is not held to
	 * the round-trip checks: see tests/fuzz/README.md. */
	Spawn__Gateway__V1__StoredState *orig =
	    spawn__gateway__v1__stored_state__unpack(NULL, size, data);
	bool strict = orig && !fz_has_unknown(&orig->base);
	if (orig)
		spawn__gateway__v1__stored_state__free_unpacked(orig, NULL);
	if (!strict) {
		actor_fini(&a);
		return 0;
	}
	gw_blob *extra = gwi_extra(&a);
	if (extra) {
		Spawn__Gateway__V1__StoredState *ss = spawn__gateway__v1__stored_state__unpack(
		    NULL, extra->len, gw_blob_value(extra));
		if (!ss || ss->n_outbox != gwi_n_outbox(&a)) {
			fprintf(stderr,
			        "extra does not hold the outbox it was made from (%s, %zu "
			        "entries, %u expected)\n",
			        ss ? "parsed" : "does not parse", ss ? ss->n_outbox : 0,
			        gwi_n_outbox(&a));
			abort();
		}
		spawn__gateway__v1__stored_state__free_unpacked(ss, NULL);
	}
	/* Fixed point: what the runtime saves decodes to the same, and saving
	 * that again changes nothing. (The first decode may already lose bytes
	 * that a C string cannot hold, e.g. a tag with a NUL in it: the gateway
	 * never writes such a row; the ingress checks refuse them.) */
	gw_blob *again = gwi_encode_state(&a);
	if (!again)
		abort();
	gw_actor b;
	memset(&b, 0, sizeof b);
	if (gwi_decode_state(&b, again) != GW_OK) {
		fprintf(stderr, "the runtime saved a state it cannot decode\n");
		abort();
	}
	gw_blob *third = gwi_encode_state(&b);
	if (!third)
		abort();
	if (third->len != again->len ||
	    memcmp(gw_blob_value(third), gw_blob_value(again), again->len)) {
		fprintf(stderr, "encode(decode(s)) != s for a state the runtime saved\n");
		abort();
	}
	gw_blob_rele(third);
	gw_blob_rele(again);
	actor_fini(&a);
	actor_fini(&b);
	return 0;
}
