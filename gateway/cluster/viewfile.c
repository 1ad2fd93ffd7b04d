/* viewfile.c - see viewfile.h. */
#include "viewfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 64

void gw_view_file_free(gw_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		const gw_member *m = &v->members[i];
		free((void *)m->id);
		free((void *)m->address);
		for (size_t k = 0; k < m->n_served; k++)
			free((void *)m->served[k]);
		free((void *)m->served);
	}
	free((void *)v->members);
	free(v);
}

gw_err gw_view_file_load(const char *path, gw_view **out, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, whylen, "cannot read %s", path);
		return GW_EIO;
	}
	gw_view *v = calloc(1, sizeof *v);
	gw_member *ms = calloc(MAX_MEMBERS, sizeof *ms);
	char self[512] = "", line[4096];
	gw_err err = GW_OK;
	int ln = 0;
	if (!v || !ms) {
		err = GW_ENOMEM;
		goto done;
	}
	v->members = ms;
	while (fgets(line, sizeof line, f)) {
		ln++;
		char *save = NULL, *kw = strtok_r(line, " \t\r\n", &save);
		if (!kw || kw[0] == '#')
			continue;
		if (!strcmp(kw, "version")) {
			char *n = strtok_r(NULL, " \t\r\n", &save);
			v->version = n ? strtoull(n, NULL, 10) : 0;
		} else if (!strcmp(kw, "self")) {
			char *id = strtok_r(NULL, " \t\r\n", &save);
			snprintf(self, sizeof self, "%s", id ? id : "");
		} else if (!strcmp(kw, "member") && v->n < MAX_MEMBERS) {
			char *id = strtok_r(NULL, " \t\r\n", &save);
			char *addr = strtok_r(NULL, " \t\r\n", &save);
			char *st = strtok_r(NULL, " \t\r\n", &save);
			char *served = strtok_r(NULL, " \t\r\n", &save);
			if (!id || !addr || !st || !served) {
				snprintf(why, whylen, "%s:%d: member ID ADDRESS STATUS SERVED",
				         path, ln);
				err = GW_EINVAL;
				goto done;
			}
			gw_member *m = &ms[v->n++];
			m->id = strdup(id);
			m->address = strdup(addr);
			m->status = atoi(st);
			size_t n = 0;
			const char **list = calloc(64, sizeof *list);
			m->served = list;
			if (!m->id || !m->address || !list) {
				err = GW_ENOMEM;
				goto done;
			}
			char *s2 = NULL;
			for (char *t = strtok_r(served, ",", &s2); t && n < 64 && strcmp(t, "-");
			     t = strtok_r(NULL, ",", &s2))
				if (!(list[n++] = strdup(t))) {
					err = GW_ENOMEM;
					goto done;
				}
			m->n_served = n;
		} else {
			snprintf(why, whylen, "%s:%d: unknown line '%s'", path, ln, kw);
			err = GW_EINVAL;
			goto done;
		}
	}
	v->self = SIZE_MAX;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(ms[i].id, self))
			v->self = i;
done:
	fclose(f);
	if (err) {
		gw_view_file_free(v);
		if (!v)
			free(ms);
		return err;
	}
	*out = v;
	return GW_OK;
}
