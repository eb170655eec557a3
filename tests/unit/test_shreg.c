/*
 * test_shreg.c - unit tests for the shared registry (src/shreg.c).
 *
 * The single-process tests cover the writer's rules (entry generations,
 * a full table, removal, mark and sweep, commit) and what readers get
 * back.  The stress test forks a reader that copies entries for a while
 * as the parent rewrites them as fast as it can; every field of an entry
 * is derived from one counter, so a torn copy shows up as a mismatch.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dc.h"
#include "shreg.h"
#include "t.h"

#define STRESS_MS	1500
#define STRESS_IDS	6

static void
make_entry(struct dc_entry *e, int n, const char *url)
{
	memset(e, 0, sizeof(*e));
	memset(e->id, 0, sizeof(e->id));
	e->id[0] = 0xd0;
	e->id[15] = (uint8_t)n;
	e->created_at = 1000000LL * n;
	e->is_active = 1;
	e->has_description = 1;
	dc_strlcpy(e->type, "postgresql", sizeof(e->type));
	snprintf(e->name, sizeof(e->name), "conn-%d", n);
	dc_strlcpy(e->url, url, sizeof(e->url));
	dc_strlcpy(e->tags, "[\"a\",\"b\"]", sizeof(e->tags));
	snprintf(e->description, sizeof(e->description), "entry %d", n);
}

static void
test_basic(void)
{
	struct dc_shreg *reg;
	struct dc_entry e[6], got, list[8];
	uint64_t g1, g2, g3, g4, gen2;
	int i, seen;

	CHECK(dc_shreg_create(&reg, 0) == DC_EINVAL);
	CHECK(reg == NULL);
	CHECK(dc_shreg_create(&reg, -1) == DC_EINVAL);
	CHECK(dc_shreg_create(&reg, 4) == 0);
	CHECK(reg != NULL);
	CHECK(dc_shreg_capacity(reg) == 4);
	CHECK(dc_shreg_count(reg) == 0);
	CHECK(dc_shreg_gen(reg) == 0);
	CHECK(dc_shreg_state(reg) == DC_REG_NEVER_LOADED);

	for (i = 0; i < 6; i++)
		make_entry(&e[i], i + 1, "postgresql://u:p@h/db");

	/* Insert: a fresh nonzero gen, the caller's gen ignored. */
	CHECK(dc_shreg_get(reg, e[0].id, &got) == DC_ENOENT);
	CHECK(dc_shreg_entry_gen(reg, e[0].id) == 0);
	e[0].gen = 777;
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	CHECK(dc_shreg_count(reg) == 1);
	memset(&got, 0xff, sizeof(got));
	CHECK(dc_shreg_get(reg, e[0].id, &got) == 0);
	g1 = got.gen;
	CHECK(g1 != 0 && g1 != 777);
	CHECK(memcmp(got.id, e[0].id, 16) == 0);
	CHECK_STR(got.name, "conn-1");
	CHECK_STR(got.url, "postgresql://u:p@h/db");
	CHECK_STR(got.type, "postgresql");
	CHECK_STR(got.description, "entry 1");
	CHECK_STR(got.tags, "[\"a\",\"b\"]");
	CHECK(got.created_at == 1000000 && got.is_active == 1);
	CHECK(dc_shreg_entry_gen(reg, e[0].id) == g1);

	/* Same url, type and active: same gen, new fields visible. */
	dc_strlcpy(e[0].name, "renamed", sizeof(e[0].name));
	e[0].datapoint_count = 12;
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	CHECK(dc_shreg_count(reg) == 1);
	CHECK(dc_shreg_get(reg, e[0].id, &got) == 0);
	CHECK(got.gen == g1);
	CHECK_STR(got.name, "renamed");
	CHECK(got.datapoint_count == 12);

	/* Each of url, type, active changes it, never to an old value. */
	dc_strlcpy(e[0].url, "postgresql://u:p@h2/db", sizeof(e[0].url));
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	g2 = dc_shreg_entry_gen(reg, e[0].id);
	CHECK(g2 != 0 && g2 != g1);
	dc_strlcpy(e[0].type, "mysql", sizeof(e[0].type));
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	g3 = dc_shreg_entry_gen(reg, e[0].id);
	CHECK(g3 != g2 && g3 != g1);
	e[0].is_active = 0;
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	g4 = dc_shreg_entry_gen(reg, e[0].id);
	CHECK(g4 != g3 && g4 != g2 && g4 != g1);
	CHECK(dc_shreg_count(reg) == 1);

	/* Fill the table; one more is refused and changes nothing. */
	for (i = 1; i < 4; i++)
		CHECK(dc_shreg_put(reg, &e[i]) == 0);
	CHECK(dc_shreg_count(reg) == 4);
	CHECK(dc_shreg_put(reg, &e[4]) == DC_EFULL);
	CHECK(dc_shreg_count(reg) == 4);
	CHECK(dc_shreg_get(reg, e[4].id, &got) == DC_ENOENT);
	/* Updating an entry of a full table still works. */
	CHECK(dc_shreg_put(reg, &e[3]) == 0);

	/* Remove frees the slot; a re-insert gets a gen never seen. */
	gen2 = dc_shreg_entry_gen(reg, e[1].id);
	CHECK(dc_shreg_remove(reg, e[1].id) == 0);
	CHECK(dc_shreg_count(reg) == 3);
	CHECK(dc_shreg_get(reg, e[1].id, &got) == DC_ENOENT);
	CHECK(dc_shreg_entry_gen(reg, e[1].id) == 0);
	CHECK(dc_shreg_remove(reg, e[1].id) == DC_ENOENT);
	CHECK(dc_shreg_put(reg, &e[4]) == 0);
	CHECK(dc_shreg_count(reg) == 4);
	CHECK(dc_shreg_remove(reg, e[4].id) == 0);
	CHECK(dc_shreg_put(reg, &e[1]) == 0);
	CHECK(dc_shreg_entry_gen(reg, e[1].id) > gen2);
	CHECK(dc_shreg_count(reg) == 4);

	/* Default. */
	CHECK(dc_shreg_get_default(reg, &got) == DC_ENOENT);
	e[2].is_default = 1;
	CHECK(dc_shreg_put(reg, &e[2]) == 0);
	CHECK(dc_shreg_get_default(reg, &got) == 0);
	CHECK(memcmp(got.id, e[2].id, 16) == 0);
	CHECK_STR(got.name, "conn-3");

	/* List: bounded by max, every live id once. */
	CHECK(dc_shreg_list(reg, list, 2) == 2);
	CHECK(dc_shreg_list(reg, list, 0) == 0);
	CHECK(dc_shreg_list(reg, list, 8) == 4);
	seen = 0;
	for (i = 0; i < 4; i++)
		seen |= 1 << list[i].id[15];
	CHECK(seen == (1 << 1 | 1 << 2 | 1 << 3 | 1 << 4));

	/* Full resync: rows 1 and 3 still exist, 2 and 4 are gone. */
	dc_shreg_mark_all(reg);
	CHECK(dc_shreg_put(reg, &e[0]) == 0);
	CHECK(dc_shreg_put(reg, &e[2]) == 0);
	CHECK(dc_shreg_sweep(reg) == 2);
	CHECK(dc_shreg_count(reg) == 2);
	CHECK(dc_shreg_get(reg, e[0].id, &got) == 0);
	CHECK(dc_shreg_get(reg, e[2].id, &got) == 0);
	CHECK(dc_shreg_get(reg, e[1].id, &got) == DC_ENOENT);
	CHECK(dc_shreg_get(reg, e[3].id, &got) == DC_ENOENT);
	CHECK(dc_shreg_sweep(reg) == 0);
	CHECK(dc_shreg_count(reg) == 2);
	/* Marks do not outlive a sweep. */
	CHECK(dc_shreg_put(reg, &e[1]) == 0);
	CHECK(dc_shreg_sweep(reg) == 0);
	CHECK(dc_shreg_count(reg) == 3);
	/* An empty resync empties the table. */
	dc_shreg_mark_all(reg);
	CHECK(dc_shreg_sweep(reg) == 3);
	CHECK(dc_shreg_count(reg) == 0);
	CHECK(dc_shreg_list(reg, list, 8) == 0);
	CHECK(dc_shreg_get_default(reg, &got) == DC_ENOENT);

	/* Commit. */
	CHECK(dc_shreg_commit(reg) == 1);
	CHECK(dc_shreg_commit(reg) == 2);
	CHECK(dc_shreg_gen(reg) == 2);

	dc_shreg_set_state(reg, DC_REG_STALE);
	dc_shreg_set_bad_rows(reg, 3);
	dc_shreg_set_last_resync(reg, 1234567890123ULL);
	CHECK(dc_shreg_state(reg) == DC_REG_STALE);
	CHECK(dc_shreg_bad_rows(reg) == 3);
	CHECK(dc_shreg_last_resync(reg) == 1234567890123ULL);

	/* Unterminated strings are terminated on the way in. */
	memset(e[5].url, 'x', sizeof(e[5].url));
	memset(e[5].name, 'n', sizeof(e[5].name));
	CHECK(dc_shreg_put(reg, &e[5]) == 0);
	CHECK(dc_shreg_get(reg, e[5].id, &got) == 0);
	CHECK(strlen(got.url) == DC_URL_MAX - 1);
	CHECK(strlen(got.name) == DC_NAME_MAX - 1);

	dc_shreg_destroy(reg);
	dc_shreg_destroy(NULL);
}

/*
 * The stats blocks and the entries are shared with a forked child, and
 * the mapping is anonymous, shared and left out of core dumps.
 */
static void
test_shared(void)
{
	struct dc_shreg *reg;
	struct dc_worker_stats *st0, *st1;
	struct dc_entry e;
	char line[512], flags[512];
	unsigned long lo, hi, addr;
	FILE *fp;
	pid_t pid;
	int status, found = 0, dd = 0, shared = 0, named = 1;

	CHECK(dc_shreg_create(&reg, 2) == 0);
	st0 = dc_shreg_stats(reg, 0);
	st1 = dc_shreg_stats(reg, 1);
	CHECK(st0 != NULL && st1 != NULL && st0 != st1);
	CHECK(dc_shreg_stats(reg, DC_MAX_WORKERS - 1) != NULL);
	CHECK(dc_shreg_stats(reg, DC_MAX_WORKERS) == NULL);
	CHECK(dc_shreg_stats(reg, -1) == NULL);
	CHECK(st1->requests == 0 && st1->pid == 0);

	make_entry(&e, 9, "postgresql://u:p@h/db");
	CHECK(dc_shreg_put(reg, &e) == 0);
	dc_shreg_commit(reg);

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0) {
		struct dc_entry got;
		int ok;

		ok = dc_shreg_gen(reg) == 1 &&
		    dc_shreg_get(reg, e.id, &got) == 0 &&
		    strcmp(got.name, "conn-9") == 0;
		__atomic_store_n(&st1->pid, (uint64_t)getpid(),
		    __ATOMIC_RELAXED);
		__atomic_fetch_add(&st1->requests, 42, __ATOMIC_RELAXED);
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(__atomic_load_n(&st1->requests, __ATOMIC_RELAXED) == 42);
	CHECK(__atomic_load_n(&st1->pid, __ATOMIC_RELAXED) == (uint64_t)pid);
	CHECK(st0->requests == 0);

	/* Find the mapping that holds the stats in /proc/self/smaps. */
	addr = (unsigned long)st0;
	if ((fp = fopen("/proc/self/smaps", "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL) {
			char perms[8], path[256];

			path[0] = '\0';
			/* A mapping's first line; the others are "Key: ..." */
			if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo,
			    &hi, perms, path) >= 3) {
				if (found)
					break;
				if (addr >= lo && addr < hi) {
					found = 1;
					shared = perms[3] == 's';
					named = path[0] != '\0' &&
					    strncmp(path, "/dev/zero", 9) != 0;
				}
				continue;
			}
			if (found && sscanf(line, "VmFlags: %511[^\n]",
			    flags) == 1)
				dd = strstr(flags, "dd") != NULL;
		}
		fclose(fp);
		CHECK(found);
		CHECK(shared);
		CHECK(!named);
		CHECK(dd);
	}
	dc_shreg_destroy(reg);
}

/* Every text field of a stress entry comes from the one counter c. */
static void
stress_fill(char *buf, size_t size, uint64_t c)
{
	int n;

	n = snprintf(buf, size, "%" PRIu64 ":", c);
	memset(buf + n, 'a' + (int)(c % 26), size - 1 - (size_t)n);
	buf[size - 1] = '\0';
}

static void
stress_entry(struct dc_entry *e, int slot, uint64_t c)
{
	memset(e->id, 0, sizeof(e->id));
	e->id[0] = 0x5e;
	e->id[15] = (uint8_t)slot;
	e->created_at = (int64_t)c;
	e->last_profiled = -(int64_t)c;
	e->datapoint_count = (int32_t)(c & 0x7fffffff);
	e->is_active = 1;
	e->is_default = slot == 0;
	e->has_description = (uint8_t)(c & 1);
	dc_strlcpy(e->type, "postgresql", sizeof(e->type));
	stress_fill(e->name, sizeof(e->name), c);
	stress_fill(e->url, sizeof(e->url), c);
	stress_fill(e->tags, sizeof(e->tags), c);
	stress_fill(e->description, sizeof(e->description), c);
}

/* Is a copied entry the one the writer wrote for some counter? */
static int
stress_consistent(const struct dc_entry *e, struct dc_entry *want)
{
	uint64_t c = (uint64_t)e->created_at;

	stress_entry(want, e->id[15], c);
	return e->id[0] == 0x5e && e->id[15] < STRESS_IDS &&
	    e->gen != 0 &&
	    e->last_profiled == want->last_profiled &&
	    e->datapoint_count == want->datapoint_count &&
	    e->is_default == want->is_default &&
	    e->has_description == want->has_description &&
	    strcmp(e->type, want->type) == 0 &&
	    strcmp(e->name, want->name) == 0 &&
	    strcmp(e->url, want->url) == 0 &&
	    strcmp(e->tags, want->tags) == 0 &&
	    strcmp(e->description, want->description) == 0;
}

/* The child: copy entries until the time is up, count torn copies. */
static void
stress_reader(struct dc_shreg *reg, int fd)
{
	static struct dc_entry list[STRESS_IDS], want;
	struct dc_entry got;
	uint64_t res[2] = { 0, 0 }, end, n = 0;
	uint8_t id[16];
	int i, k;

	end = dc_now_ms() + STRESS_MS;
	while (dc_now_ms() < end) {
		for (i = 0; i < 64; i++, n++) {
			memset(id, 0, sizeof(id));
			id[0] = 0x5e;
			id[15] = (uint8_t)(n % STRESS_IDS);
			if (dc_shreg_get(reg, id, &got) == 0) {
				res[0]++;
				if (!stress_consistent(&got, &want) ||
				    memcmp(got.id, id, 16) != 0)
					res[1]++;
			}
			if (n % 8 == 0) {
				k = dc_shreg_list(reg, list, STRESS_IDS);
				while (k-- > 0) {
					res[0]++;
					if (!stress_consistent(&list[k], &want))
						res[1]++;
				}
			}
			if (n % 16 == 0 &&
			    dc_shreg_get_default(reg, &got) == 0) {
				res[0]++;
				if (!stress_consistent(&got, &want) ||
				    got.id[15] != 0)
					res[1]++;
			}
		}
	}
	if (write(fd, res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(2);
	_exit(0);
}

static void
test_stress(void)
{
	static struct dc_entry e;
	struct dc_shreg *reg;
	uint64_t res[2] = { 0, 0 }, c = 0, end;
	pid_t pid;
	int fd[2], status, slot;

	CHECK(dc_shreg_create(&reg, STRESS_IDS + 2) == 0);
	for (slot = 0; slot < STRESS_IDS; slot++) {
		stress_entry(&e, slot, ++c);
		CHECK(dc_shreg_put(reg, &e) == 0);
	}
	dc_shreg_commit(reg);
	CHECK(pipe(fd) == 0);

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == 0) {
		close(fd[0]);
		stress_reader(reg, fd[1]);
	}
	CHECK(pid > 0);
	close(fd[1]);

	/* Rewrite as fast as we can; now and then remove and re-insert. */
	end = dc_now_ms() + STRESS_MS;
	while (dc_now_ms() < end) {
		for (slot = 0; slot < 64; slot++) {
			c++;
			stress_entry(&e, (int)(c % STRESS_IDS), c);
			if (c % 97 == 0)
				dc_shreg_remove(reg, e.id);
			if (dc_shreg_put(reg, &e) != 0)
				break;
			dc_shreg_commit(reg);
		}
	}

	CHECK(read(fd[0], res, sizeof(res)) == (ssize_t)sizeof(res));
	close(fd[0]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("stress: %" PRIu64 " writes, %" PRIu64 " reads, %" PRIu64
	    " torn\n", c, res[0], res[1]);
	CHECK(res[1] == 0);
	CHECK(res[0] > 1000);
	CHECK(c > 1000);
	CHECK(dc_shreg_count(reg) == STRESS_IDS);
	dc_shreg_destroy(reg);
}

int
main(void)
{
	test_basic();
	test_shared();
	test_stress();
	T_DONE();
}
