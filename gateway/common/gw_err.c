#include "gw_err.h"

const char *gw_strerror(gw_err e)
{
	switch (e) {
#define GW_ERR_STR(name, val, status, msg)                                                         \
	case GW_##name:                                                                            \
		return msg;
		GW_ERR_MAP(GW_ERR_STR)
#undef GW_ERR_STR
	}
	return "unknown error";
}

grpc_status_code gw_err_status(gw_err e)
{
	switch (e) {
#define GW_ERR_ST(name, val, status, msg)                                                          \
	case GW_##name:                                                                            \
		return status;
		GW_ERR_MAP(GW_ERR_ST)
#undef GW_ERR_ST
	}
	return GRPC_STATUS_UNKNOWN;
}

const char *gw_err_name(gw_err e)
{
	switch (e) {
#define GW_ERR_NM(name, val, status, msg)                                                          \
	case GW_##name:                                                                            \
		return #name;
		GW_ERR_MAP(GW_ERR_NM)
#undef GW_ERR_NM
	}
	return "E?";
}
