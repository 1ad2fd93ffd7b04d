/* viewfile.h - a membership view read from a file: the hidden test flag
 * --cluster-test-view (docs/testing.md, "Cluster tests"). The file is fed
 * to gw_router_on_view exactly as the membership's views are, so the tests
 * drive the same routing code as a real cluster.
 *
 * Format, one item a line ('#' starts a comment):
 *   version N
 *   self ID                         (absent: this member is fenced)
 *   member ID ADDRESS STATUS SERVED (STATUS 1-4 as GW_MEMBER_*; SERVED
 *                                    "system/Type,system/Other" or "-") */
#ifndef GW_CLUSTER_VIEWFILE_H
#define GW_CLUSTER_VIEWFILE_H

#include "gw_err.h"
#include "view.h"

/* gw_view_file_load reads path. Returns GW_OK and *out (free with
 * gw_view_file_free); GW_EIO (unreadable), GW_EINVAL (why says which line),
 * GW_ENOMEM. Blocks: reads the file. */
gw_err gw_view_file_load(const char *path, gw_view **out, char *why, size_t whylen);
void gw_view_file_free(gw_view *v);

#endif
