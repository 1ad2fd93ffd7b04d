/* gw_err.h - the one error table of the gateway and the statestores.
 *
 * GW_ERR_MAP generates the enum, gw_strerror() and the mapping to gRPC
 * status codes, so every error a client sees has a precise status.
 * Members are only ever appended (values are stable).
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <grpc/status.h>

#define GW_ERR_MAP(XX)                                                                             \
	XX(OK, 0, GRPC_STATUS_OK, "success")                                                       \
	XX(EINVAL, 1, GRPC_STATUS_INVALID_ARGUMENT, "invalid argument")                            \
	XX(ENOTFOUND, 2, GRPC_STATUS_NOT_FOUND, "not found")                                       \
	XX(ECONFLICT, 3, GRPC_STATUS_ABORTED, "revision conflict")                                 \
	XX(EUNAVAIL, 4, GRPC_STATUS_UNAVAILABLE, "unavailable")                                    \
	XX(EFULL, 5, GRPC_STATUS_RESOURCE_EXHAUSTED, "mailbox full")                               \
	XX(ENOMEM, 6, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory")                             \
	XX(ETOOBIG, 7, GRPC_STATUS_RESOURCE_EXHAUSTED, "message too large")                        \
	XX(ETIMEDOUT, 8, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded")                       \
	XX(ECRYPTO, 9, GRPC_STATUS_DATA_LOSS, "state failed to decrypt or authenticate")           \
	XX(ECORRUPT, 10, GRPC_STATUS_DATA_LOSS, "stored state is corrupt")                         \
	XX(EIO, 11, GRPC_STATUS_INTERNAL, "storage error")                                         \
	XX(ECANCELLED, 12, GRPC_STATUS_CANCELLED, "cancelled")                                     \
	XX(EHOST, 13, GRPC_STATUS_UNKNOWN, "host error")                                           \
	XX(EFENCED, 14, GRPC_STATUS_ABORTED, "activation fenced by another gateway")               \
	XX(ESHUTDOWN, 15, GRPC_STATUS_UNAVAILABLE, "gateway shutting down")                        \
	XX(ECONFIG, 16, GRPC_STATUS_FAILED_PRECONDITION, "bad configuration")                      \
	XX(EUNAUTH, 17, GRPC_STATUS_UNAUTHENTICATED, "unauthenticated")                            \
	XX(EDENIED, 18, GRPC_STATUS_PERMISSION_DENIED, "permission denied")                        \
	XX(EOWNED, 19, GRPC_STATUS_UNAVAILABLE, "actor active on another member of the cluster")

typedef enum gw_err {
#define GW_ERR_ENUM(name, val, status, msg) GW_##name = val,
	GW_ERR_MAP(GW_ERR_ENUM)
#undef GW_ERR_ENUM
} gw_err;

/* gw_strerror returns a static description of e ("unknown error" for
 * values outside the table). Thread: any. */
const char *gw_strerror(gw_err e);

/* gw_err_status maps e to the gRPC status a client receives. */
grpc_status_code gw_err_status(gw_err e);

/* gw_err_name returns the symbolic name ("ENOTFOUND"). */
const char *gw_err_name(gw_err e);

#endif
