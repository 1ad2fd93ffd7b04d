/* crypto.h - AES-256-GCM sealing of actor state (OpenSSL EVP).
 *
 * A keyring holds one or more 256-bit keys, each with a short id. The first
 * key (the primary) seals; every key opens, so keys can be rotated by
 * putting a new key first and keeping the old ones until every row has been
 * re-saved.
 *
 * Sealed format (the columns of a gw_row):
 *   key_id   id of the key that sealed (stored in clear, selects the key)
 *   nonce    12 random bytes, fresh per seal (RAND_bytes)
 *   data     ciphertext || 16-byte GCM tag
 * Associated data binds a row to its actor, so a row copied onto another
 * actor does not authenticate:
 *   be32(len(system)) || system || 0x00 || be32(len(name)) || name
 * (length-prefixed, so ("ab","c") and ("a","bc") differ).
 *
 * Key material is zeroed (OPENSSL_cleanse) when the keyring is freed and in
 * every temporary buffer that held it.
 *
 * Thread: a keyring is immutable after parse but for its cache of data
 * keys (envelope 3), which has its own mutex; sealing and opening with one
 * keyring from several threads at once is safe (each call has its own
 * cipher context).
 */
#ifndef GW_CRYPTO_H
#define GW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

#define GW_KEY_LEN     32 /* AES-256 */
#define GW_NONCE_LEN   12 /* GCM standard nonce */
#define GW_TAG_LEN     16 /* GCM tag appended to the ciphertext */
#define GW_KEY_ID_MAX  64 /* longest key id, in bytes */
#define GW_KEY_B64_LEN 44 /* base64 of GW_KEY_LEN bytes, with padding */

typedef struct gw_keyring gw_keyring; /* opaque */

/* gw_keyring_parse builds a keyring from spec:
 *   "id1:base64key,id2:base64key"   first seals, all open
 *   "base64key"                     one key with id "k0"
 * Ids are 1..GW_KEY_ID_MAX characters of [A-Za-z0-9_.-] and unique; keys
 * are standard base64 (padding optional) of exactly GW_KEY_LEN bytes.
 * Blanks around entries and a trailing newline are ignored.
 * Returns GW_OK and sets *out (free with gw_keyring_free), or GW_ECONFIG
 * with a one-line reason in err (caller storage of errlen bytes; err may be
 * NULL). The reason never contains key material. spec is borrowed.
 * Blocks: no. Thread: any. */
gw_err gw_keyring_parse(gw_keyring **out, const char *spec, char *err, size_t errlen);

/* gw_keyring_free zeroes and frees kr. Accepts NULL. */
void gw_keyring_free(gw_keyring *kr);

/* gw_keyring_generate writes a fresh random key as base64 (GW_KEY_B64_LEN
 * characters and a NUL) into out, caller storage. The caller should
 * OPENSSL_cleanse(out) when done. Returns GW_OK, or GW_ECRYPTO when the
 * random generator fails. Blocks: no. Thread: any. */
gw_err gw_keyring_generate(char out[GW_KEY_B64_LEN + 1]);

/* gw_keyring_primary_id names the key gw_seal uses. Borrowed, lives as
 * long as kr. */
const char *gw_keyring_primary_id(const gw_keyring *kr);

/* A sealed value. */
typedef struct gw_sealed {
	/* seal: set to a string borrowed from the keyring; open: borrowed
	 * from the caller. */
	const char *key_id;
	uint8_t nonce[GW_NONCE_LEN];
	/* ciphertext || tag. seal: caller frees with free(); open: borrowed. */
	uint8_t *data;
	size_t len; /* plaintext length + GW_TAG_LEN */
} gw_sealed;

/* gw_seal encrypts pt (len bytes, borrowed; may be NULL when len is 0)
 * under the primary key with a fresh nonce and the AAD of (system, name)
 * (both borrowed). Fills *out on GW_OK. Returns GW_ENOMEM, GW_ETOOBIG
 * (len near SIZE_MAX) or GW_ECRYPTO (OpenSSL failure, no randomness).
 * Blocks: no. Thread: any. */
gw_err gw_seal(const gw_keyring *kr, const char *system, const char *name, const uint8_t *pt,
               size_t len, gw_sealed *out);

/* Envelope 2 (a state row at a revision): data = GW_ENV2_MAGIC ||
 * ciphertext || tag, and the associated data binds the revision as well:
 *   envelope-1 AAD || 0x02 || be64(revision)
 * so a row copied onto another revision (an older state replayed as the
 * current one) does not authenticate. Rows sealed before envelope 2 (no
 * magic, envelope-1 AAD) still open with gw_open_rev. Envelope 3 below
 * replaced it for new rows. */
#define GW_ENV2_MAGIC_LEN 4
extern const uint8_t gw_env2_magic[GW_ENV2_MAGIC_LEN]; /* A7 'G' 'W' 02 */

/* gw_seal_rev is gw_seal for envelope 2: the row of (system, name) at
 * revision. out->len counts the magic. Same returns as gw_seal. The store
 * writes envelope 3 now (gw_seal_sys); this stays for tests and tools that
 * make rows as earlier versions did. */
gw_err gw_seal_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const uint8_t *pt, size_t len, gw_sealed *out);

/* Envelope 3 (a state row at a revision, under a per-system data key):
 * data = GW_ENV3_MAGIC || ciphertext || tag, sealed with AES-256-GCM under
 *   data key = HKDF-SHA256(ikm = the keyring key named by the row's key id,
 *                          salt = none,
 *                          info = "spawn statestore data key v1" 0x00 ||
 *                                 be32(len(system)) || system)
 * (a system name over 900 bytes stands in the info as its SHA-256, after
 * its length: OpenSSL bounds the info), and the associated data binds the
 * revision and the key id as well:
 *   envelope-1 AAD || 0x03 || be64(revision) || u8(len(key_id)) || key_id
 * So holding one system's data key opens no row of another system, and a
 * row moved onto another system, actor or revision, or relabelled with
 * another key id, does not authenticate. Every save writes envelope 3; rows
 * of envelopes 1 and 2 still open, and key rotation rewrites them as
 * envelope 3 (store.h, gw_store_rotate_step). Data keys are cached per
 * (key, system) in the keyring: a bounded table (1,024 slots, a collision
 * replaces), zeroed when the keyring is freed. */
extern const uint8_t gw_env3_magic[GW_ENV2_MAGIC_LEN]; /* A7 'G' 'W' 03 */

/* gw_seal_sys is gw_seal for envelope 3: the row of (system, name) at
 * revision, under the primary key's data key for system. out->len counts
 * the magic. Same returns as gw_seal. */
gw_err gw_seal_sys(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const uint8_t *pt, size_t len, gw_sealed *out);

/* Scheduled invocations (envelope 3 of a schedule row): sealed under the
 * data key of their target system, which the row records in clear:
 *   data = GW_ENV3_MAGIC || be32(len(system)) || system || ciphertext || tag
 *   AAD  = be32(len(system)) || system || 0x00 || be32(len(id)) || id ||
 *          0x03 || be64(2^64 - 1) || u8(len(key_id)) || key_id
 * (revision 2^64 - 1 marks a schedule row: no state row has it). A row of
 * one system's schedule never opens as another's, nor as a state row.
 * GW_SEAL_SYSTEM_MAX bounds the recorded system name. */
#define GW_SEAL_SYSTEM_MAX 4096

/* gw_seal_sched seals a scheduled invocation of id (borrowed) for system
 * (borrowed, 1..GW_SEAL_SYSTEM_MAX bytes) under the primary key's data key
 * of system. Same returns as gw_seal, GW_EINVAL for a bad system. */
gw_err gw_seal_sched(const gw_keyring *kr, const char *system, const char *id, const uint8_t *pt,
                     size_t len, gw_sealed *out);

/* gw_open_sched opens a scheduled invocation of id: envelope 3 (above),
 * or a row sealed before (envelope 1 with the AAD of (legacy_system, id)).
 * On GW_OK *system (may be NULL) gets the system recorded in the row
 * (caller frees with free()), or NULL for an envelope 1 row. Same returns
 * as gw_open. */
gw_err gw_open_sched(const gw_keyring *kr, const char *legacy_system, const char *id,
                     const gw_sealed *in, uint8_t **pt, size_t *ptlen, char **system);

/* gw_envelope_of tells the envelope of sealed data (borrowed, len bytes)
 * by its magic: 3, 2, or 1 (no magic). */
int gw_envelope_of(const uint8_t *data, size_t len);

/* gw_keyring_data_key writes the envelope-3 data key of system under the
 * keyring key key_id into out (caller storage; cleanse it after use).
 * GW_OK; GW_ENOTFOUND (no such key id); GW_EINVAL; GW_ECRYPTO (OpenSSL).
 * For tests and tools. Blocks: no. Thread: any. */
gw_err gw_keyring_data_key(const gw_keyring *kr, const char *key_id, const char *system,
                           uint8_t out[GW_KEY_LEN]);

/* gw_keyring_cache_stats: data keys derived (cache misses) and cache hits
 * so far. Either pointer may be NULL. Thread: any. */
void gw_keyring_cache_stats(const gw_keyring *kr, uint64_t *derived, uint64_t *hits);

/* gw_open_rev opens a state row of (system, name) stored at revision:
 * envelope 3 or 2 bound to that revision, or an envelope 1 row written
 * before (revision not bound). *envelope (may be NULL) gets 1, 2 or 3 on
 * GW_OK. Same returns as gw_open. */
gw_err gw_open_rev(const gw_keyring *kr, const char *system, const char *name, uint64_t revision,
                   const gw_sealed *in, uint8_t **pt, size_t *ptlen, int *envelope);

/* gw_open authenticates and decrypts in (borrowed) for (system, name).
 * On GW_OK sets *pt (caller frees with free(); never NULL, even for an
 * empty plaintext) and *ptlen. Returns GW_ECORRUPT when in->len is shorter
 * than a tag, GW_ECRYPTO when in->key_id is not in the keyring or the tag
 * does not verify (wrong key, tampered bytes, another actor's row), or
 * GW_ENOMEM. Nothing is written on failure. Blocks: no. Thread: any. */
gw_err gw_open(const gw_keyring *kr, const char *system, const char *name, const gw_sealed *in,
               uint8_t **pt, size_t *ptlen);

#endif
