/* fuzz_contracts.c - libFuzzer target: a descriptor set a host sends
 * (HostMessage.contracts) or a --descriptors file, fed to the contracts
 * pool (gateway/contracts): size and depth bounds, parsing, the name
 * checks, imports, the symbol index. Whatever the pool takes must then
 * answer every lookup, and a second owner sending the same bytes must be
 * accepted (same contents, shared). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contracts.h"

static gw_contracts *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	gw_contracts_opts o = {.max_set_bytes = 1 << 16};
	if (gw_contracts_create(&pool, &o) != GW_OK)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int a, b;
	char why[1024];
	gw_err err = gw_contracts_add(pool, &a, data, size, why, sizeof why);
	if (err == GW_OK) {
		if (gw_contracts_add(pool, &b, data, size, why, sizeof why) != GW_OK)
			abort(); /* the same set again is always fine */
		gw_bytes_list l;
		const char *own[] = {"grpc.health.v1.Health"};
		if (gw_contracts_services(pool, own, 1, &l) == GW_OK)
			gw_bytes_list_fini(&l);
		if (gw_contracts_file_by_symbol(pool, "t.M", &l) == GW_OK)
			gw_bytes_list_fini(&l);
		gw_contract_method m;
		(void)gw_contracts_method(pool, "/t.S/Call", 9, &m);
	} else if (!why[0]) {
		abort(); /* every refusal says why */
	}
	/* Both hosts leave: the pool keeps the files, replaceable. */
	gw_contracts_release(pool, &a);
	gw_contracts_release(pool, &b);
	return 0;
}
