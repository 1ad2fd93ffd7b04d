/* placement.c - rendezvous (highest random weight) hashing over the view.
 *
 * Each candidate member gets a weight w(member, key) and the highest wins.
 * Removing a member moves only the keys it owned (each to the member with
 * the next-highest weight); adding one takes about 1/n of every member's
 * keys. No ring, no virtual nodes, no state: the answer is a function of the
 * view alone.
 *
 * The hash: FNV-1a 64 is simple and byte-order independent but its low bits
 * mix poorly, so each FNV result goes through the murmur3 fmix64 finalizer
 * (full avalanche), and the member's and the key's hashes are combined
 * with one more fmix64 of (key + member * odd constant), so that two members
 * never rank keys in correlated ways. Fixed constants: the weights (and so
 * the owners) are the same on every member and after every restart. */
#include "placement.h"

#include <string.h>

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

uint64_t gw_place_weight(const char *member_id, const char *system, const char *name)
{
	uint64_t k = fnv1a(FNV_BASIS, system, strlen(system));
	k = fnv1a(k, "", 1); /* the 0 byte: ("ab","c") and ("a","bc") differ */
	k = fnv1a(k, name, strlen(name));
	uint64_t m = fmix64(fnv1a(FNV_BASIS, member_id, strlen(member_id)));
	return fmix64(fmix64(k) + m * 0x9e3779b97f4a7c15ULL);
}

bool gw_member_serves(const gw_member *m, const char *system, const char *actor_type)
{
	size_t ls = strlen(system);
	for (size_t i = 0; i < m->n_served; i++) {
		const char *s = m->served[i];
		if (s && strncmp(s, system, ls) == 0 && s[ls] == '/' &&
		    strcmp(s + ls + 1, actor_type) == 0)
			return true;
	}
	return false;
}

size_t gw_place(const gw_view *v, const char *system, const char *actor_type,
                const char *actor_name)
{
	if (!v || !system || !actor_type || !actor_name)
		return SIZE_MAX;
	size_t best = SIZE_MAX;
	uint64_t bw = 0;
	for (size_t i = 0; i < v->n; i++) {
		const gw_member *m = &v->members[i];
		if (m->status != GW_MEMBER_ACTIVE || !m->id ||
		    !gw_member_serves(m, system, actor_type))
			continue;
		uint64_t w = gw_place_weight(m->id, system, actor_name);
		if (best == SIZE_MAX || w > bw ||
		    (w == bw && strcmp(m->id, v->members[best].id) < 0)) {
			best = i;
			bw = w;
		}
	}
	return best;
}
