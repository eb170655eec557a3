/*
 * shreg.c - the shared registry segment (include/shreg.h).
 *
 * One anonymous MAP_SHARED mapping, made by the master before fork and
 * inherited by every worker: a header, one stats block per worker slot,
 * then `capacity' entry slots.  The master is the single writer; each slot
 * has its own seqlock so workers copy entries without locks and never see
 * a torn one, and registry_gen, bumped with release semantics after a
 * batch, tells a worker that something changed.  The mapping holds
 * decrypted URLs, so it is excluded from core dumps and a removed slot is
 * wiped.
 */
#include <sys/mman.h>

#include <assert.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dc.h"
#include "shreg.h"

#define DC_SHREG_MAGIC		0x6463736872656701ULL	/* "dcshreg" v1 */
#define DC_SHREG_SPINS		128	/* reader retries before yielding */
#define DC_CACHELINE		64

/*
 * A worker's counters on their own cache lines, so that two workers
 * bumping theirs do not bounce a line between CPUs.
 */
struct dc_stats_slot {
	struct dc_worker_stats	 st;
} __attribute__((aligned(DC_CACHELINE)));

/*
 * One entry.  seq is the seqlock; used and e are what readers copy under
 * it.  mark is private to the writer (readers never look at it): set by
 * dc_shreg_mark_all(), cleared by dc_shreg_put().
 */
struct dc_slot {
	_Atomic uint32_t	 seq;
	uint8_t			 used;
	uint8_t			 mark;
	struct dc_entry		 e;
} __attribute__((aligned(DC_CACHELINE)));

/* The segment itself: the opaque handle is the start of the mapping. */
struct dc_shreg {
	uint64_t		 magic;
	size_t			 map_size;
	int			 capacity;
	_Atomic uint64_t	 registry_gen;
	_Atomic int		 state;
	_Atomic int		 bad_rows;
	_Atomic uint64_t	 last_resync;
	_Atomic uint64_t	 resyncs;
	_Atomic int		 sysdb_up;
	_Atomic int		 count;
	_Atomic uint64_t	 master_beat;		/* monotonic ms */
	uint64_t		 next_entry_gen;	/* writer only */
	pid_t			 writer;		/* the master */
	/* refused rows, under one seqlock of their own */
	_Atomic uint32_t	 refused_seq;
	int			 nrefused;	/* listed */
	int			 refused_total;	/* listed or not */
	struct dc_refused_row	 refused[DC_REFUSED_MAX];
	struct dc_stats_slot	 stats[DC_MAX_WORKERS];
	struct dc_slot		 slots[];
};

/* What a reader is looking for in a slot. */
enum dc_match {
	DC_MATCH_ANY,
	DC_MATCH_ID,
	DC_MATCH_DEFAULT,
};

int
dc_shreg_create(struct dc_shreg **regp, int capacity)
{
	struct dc_shreg *reg = MAP_FAILED;
	size_t size = 0;
	int rv = DC_EINVAL;

	*regp = NULL;
	if (capacity <= 0 || (size_t)capacity >
	    (SIZE_MAX - sizeof(struct dc_shreg)) / sizeof(struct dc_slot))
		goto out;
	size = sizeof(struct dc_shreg) +
	    (size_t)capacity * sizeof(struct dc_slot);

	/* Anonymous and shared: inherited across fork, no name anywhere. */
	rv = DC_ENOMEM;
	reg = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (reg == MAP_FAILED)
		goto out;
	/* Decrypted URLs must not end up in a core file. */
	rv = DC_ERR;
	if (madvise(reg, size, MADV_DONTDUMP) == -1)
		goto out;

	/* The mapping is zero-filled: every slot is unused, seq even. */
	reg->magic = DC_SHREG_MAGIC;
	reg->map_size = size;
	reg->capacity = capacity;
	atomic_init(&reg->registry_gen, 0);
	atomic_init(&reg->state, DC_REG_NEVER_LOADED);
	atomic_init(&reg->bad_rows, 0);
	atomic_init(&reg->last_resync, 0);
	atomic_init(&reg->resyncs, 0);
	atomic_init(&reg->sysdb_up, 0);
	atomic_init(&reg->count, 0);
	atomic_init(&reg->refused_seq, 0);
	atomic_init(&reg->master_beat, 0);
	reg->next_entry_gen = 0;
	reg->writer = getpid();
	*regp = reg;
	rv = DC_OK;
out:
	if (rv != DC_OK && reg != MAP_FAILED)
		munmap(reg, size);
	return rv;
}

void
dc_shreg_destroy(struct dc_shreg *reg)
{
	size_t size;

	if (reg == NULL)
		return;
	size = reg->map_size;
	munmap(reg, size);
}

/* --- writer side --- */

/*
 * Only the process that made the segment (the master) writes it: a second
 * writer would break the seqlock, which has no writer-side lock.
 */
#define ASSERT_WRITER(reg)	assert((reg)->writer == getpid())

/* Open a write: seq goes odd before any byte of the slot changes. */
static void
slot_write_begin(struct dc_slot *sl)
{
	uint32_t s = atomic_load_explicit(&sl->seq, memory_order_relaxed);

	assert((s & 1) == 0);	/* writes never nest or overlap */
	atomic_store_explicit(&sl->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

/* Close a write: seq even again, published after the data. */
static void
slot_write_end(struct dc_slot *sl)
{
	uint32_t s = atomic_load_explicit(&sl->seq, memory_order_relaxed);

	assert((s & 1) == 1);	/* a write was open */
	atomic_store_explicit(&sl->seq, s + 1, memory_order_release);
}

/* The writer's own view: no seqlock needed, nobody else writes. */
static struct dc_slot *
slot_find(struct dc_shreg *reg, const uint8_t id[16], struct dc_slot **freep)
{
	struct dc_slot *sl, *found = NULL;
	int i;

	if (freep != NULL)
		*freep = NULL;
	for (i = 0; i < reg->capacity; i++) {
		sl = &reg->slots[i];
		if (!sl->used) {
			if (freep != NULL && *freep == NULL)
				*freep = sl;
			continue;
		}
		if (memcmp(sl->e.id, id, 16) == 0) {
			found = sl;
			break;
		}
	}
	return found;
}

int
dc_shreg_put(struct dc_shreg *reg, const struct dc_entry *e)
{
	struct dc_slot *sl, *freesl;
	uint64_t gen;
	int rv = DC_EFULL, isnew = 0;

	ASSERT_WRITER(reg);

	sl = slot_find(reg, e->id, &freesl);
	if (sl == NULL) {
		/* No match, so slot_find saw them all: take the first free. */
		if (freesl == NULL)
			goto out;
		sl = freesl;
		isnew = 1;
	}

	/* A target connection stays valid while these three do not move. */
	if (!isnew && strncmp(sl->e.url, e->url, DC_URL_MAX) == 0 &&
	    strncmp(sl->e.type, e->type, DC_TYPE_MAX) == 0 &&
	    sl->e.is_active == e->is_active)
		gen = sl->e.gen;
	else
		gen = ++reg->next_entry_gen;

	slot_write_begin(sl);
	memcpy(&sl->e, e, sizeof(sl->e));
	sl->e.gen = gen;
	sl->e.type[DC_TYPE_MAX - 1] = '\0';
	sl->e.name[DC_NAME_MAX - 1] = '\0';
	sl->e.url[DC_URL_MAX - 1] = '\0';
	sl->e.tags[DC_TAGS_MAX - 1] = '\0';
	sl->e.description[DC_DESC_MAX - 1] = '\0';
	sl->used = 1;
	slot_write_end(sl);
	sl->mark = 0;

	if (isnew)
		atomic_store_explicit(&reg->count,
		    atomic_load_explicit(&reg->count, memory_order_relaxed) + 1,
		    memory_order_relaxed);
	rv = DC_OK;
out:
	return rv;
}

/* Free a used slot, wiping the decrypted URL with the rest. */
static void
slot_clear(struct dc_shreg *reg, struct dc_slot *sl)
{
	slot_write_begin(sl);
	sl->used = 0;
	dc_explicit_bzero(&sl->e, sizeof(sl->e));
	slot_write_end(sl);
	sl->mark = 0;
	atomic_store_explicit(&reg->count,
	    atomic_load_explicit(&reg->count, memory_order_relaxed) - 1,
	    memory_order_relaxed);
}

int
dc_shreg_remove(struct dc_shreg *reg, const uint8_t id[16])
{
	struct dc_slot *sl;
	int rv = DC_ENOENT;

	ASSERT_WRITER(reg);

	if ((sl = slot_find(reg, id, NULL)) == NULL)
		goto out;
	slot_clear(reg, sl);
	rv = DC_OK;
out:
	return rv;
}

void
dc_shreg_mark_all(struct dc_shreg *reg)
{
	int i;

	ASSERT_WRITER(reg);

	for (i = 0; i < reg->capacity; i++)
		reg->slots[i].mark = reg->slots[i].used;
}

int
dc_shreg_sweep(struct dc_shreg *reg)
{
	struct dc_slot *sl;
	int i, n = 0;

	ASSERT_WRITER(reg);

	for (i = 0; i < reg->capacity; i++) {
		sl = &reg->slots[i];
		if (sl->used && sl->mark) {
			slot_clear(reg, sl);
			n++;
		}
		sl->mark = 0;
	}
	return n;
}

uint64_t
dc_shreg_commit(struct dc_shreg *reg)
{
	ASSERT_WRITER(reg);
	return atomic_fetch_add_explicit(&reg->registry_gen, 1,
	    memory_order_release) + 1;
}

void
dc_shreg_set_state(struct dc_shreg *reg, int state)
{
	atomic_store_explicit(&reg->state, state, memory_order_relaxed);
}

void
dc_shreg_set_bad_rows(struct dc_shreg *reg, int n)
{
	atomic_store_explicit(&reg->bad_rows, n, memory_order_relaxed);
}

static void
refused_begin(struct dc_shreg *reg)
{
	ASSERT_WRITER(reg);
	assert((atomic_load_explicit(&reg->refused_seq,
	    memory_order_relaxed) & 1) == 0);
	atomic_fetch_add_explicit(&reg->refused_seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void
refused_end(struct dc_shreg *reg)
{
	atomic_fetch_add_explicit(&reg->refused_seq, 1, memory_order_release);
}

static int
refused_find(const struct dc_shreg *reg, const uint8_t id[16])
{
	int i;

	for (i = 0; i < reg->nrefused; i++)
		if (memcmp(reg->refused[i].id, id, 16) == 0)
			return i;
	return -1;
}

void
dc_shreg_refuse(struct dc_shreg *reg, const uint8_t id[16], const char *name,
    const char *reason)
{
	struct dc_refused_row *r;
	int i;

	refused_begin(reg);
	if ((i = refused_find(reg, id)) < 0) {
		reg->refused_total++;
		if (reg->nrefused == DC_REFUSED_MAX)
			goto out;
		i = reg->nrefused++;
	}
	r = &reg->refused[i];
	memcpy(r->id, id, 16);
	dc_strlcpy(r->name, name != NULL ? name : "", sizeof(r->name));
	dc_strlcpy(r->reason, reason, sizeof(r->reason));
out:
	refused_end(reg);
}

void
dc_shreg_accept(struct dc_shreg *reg, const uint8_t id[16])
{
	int i;

	if ((i = refused_find(reg, id)) < 0)
		return;
	refused_begin(reg);
	reg->refused[i] = reg->refused[reg->nrefused - 1];
	reg->nrefused--;
	reg->refused_total--;
	refused_end(reg);
}

void
dc_shreg_refuse_clear(struct dc_shreg *reg)
{
	refused_begin(reg);
	reg->nrefused = 0;
	reg->refused_total = 0;
	refused_end(reg);
}

int
dc_shreg_refused(const struct dc_shreg *reg, struct dc_refused_row *out,
    int max, int *total)
{
	struct dc_shreg *r = (struct dc_shreg *)(uintptr_t)reg;
	uint32_t s1, s2;
	int n, spins = 0;

	for (;;) {
		s1 = atomic_load_explicit(&r->refused_seq,
		    memory_order_acquire);
		if ((s1 & 1) == 0) {
			n = reg->nrefused < max ? reg->nrefused : max;
			if (n > 0)
				memcpy(out, reg->refused, (size_t)n *
				    sizeof(*out));
			*total = reg->refused_total;
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(&r->refused_seq,
			    memory_order_relaxed);
			if (s1 == s2)
				return n;
		}
		if (++spins % DC_SHREG_SPINS == 0)
			sched_yield();
	}
}

void
dc_shreg_set_last_resync(struct dc_shreg *reg, uint64_t ms)
{
	atomic_store_explicit(&reg->last_resync, ms, memory_order_relaxed);
}

/* --- reader side --- */

uint64_t
dc_shreg_gen(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->registry_gen, memory_order_acquire);
}

int
dc_shreg_state(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->state, memory_order_relaxed);
}

int
dc_shreg_bad_rows(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->bad_rows, memory_order_relaxed);
}

uint64_t
dc_shreg_last_resync(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->last_resync, memory_order_relaxed);
}

int
dc_shreg_capacity(const struct dc_shreg *reg)
{
	return reg->capacity;
}

int
dc_shreg_count(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->count, memory_order_relaxed);
}

/*
 * Read one slot under its seqlock.  When it is live and matches, copy the
 * entry into out (or just its gen into genp when out is NULL) and return
 * 1; else return 0.  Whatever is decided, it is decided on a consistent
 * view: a write that overlaps the copy makes the reader try again.  The
 * writer never sleeps inside a write, so a reader spins a little and then
 * yields the CPU to it.
 */
static int
slot_read(const struct dc_slot *sl, enum dc_match how, const uint8_t *id,
    struct dc_entry *out, uint64_t *genp)
{
	uint32_t s1, s2;
	int hit, spins = 0;

	for (;;) {
		s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
		if ((s1 & 1) == 0) {
			hit = sl->used;
			if (hit && how == DC_MATCH_ID)
				hit = memcmp(sl->e.id, id, 16) == 0;
			else if (hit && how == DC_MATCH_DEFAULT)
				hit = sl->e.is_default;
			if (hit && out != NULL)
				memcpy(out, &sl->e, sizeof(*out));
			else if (hit && genp != NULL)
				*genp = sl->e.gen;
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(&sl->seq,
			    memory_order_relaxed);
			if (s1 == s2) {
				/* an even, unchanged seq: nothing overlapped */
				assert((s2 & 1) == 0);
				break;
			}
		}
		if (++spins >= DC_SHREG_SPINS) {
			spins = 0;
			sched_yield();
		}
	}
	return hit;
}

/* First live slot matching how/id, copied into out; 0 or DC_ENOENT. */
static int
shreg_find(const struct dc_shreg *reg, enum dc_match how, const uint8_t *id,
    struct dc_entry *out, uint64_t *genp)
{
	int i, rv = DC_ENOENT;

	for (i = 0; i < reg->capacity; i++) {
		if (slot_read(&reg->slots[i], how, id, out, genp)) {
			rv = DC_OK;
			break;
		}
	}
	return rv;
}

int
dc_shreg_get(const struct dc_shreg *reg, const uint8_t id[16],
    struct dc_entry *out)
{
	return shreg_find(reg, DC_MATCH_ID, id, out, NULL);
}

int
dc_shreg_get_default(const struct dc_shreg *reg, struct dc_entry *out)
{
	return shreg_find(reg, DC_MATCH_DEFAULT, NULL, out, NULL);
}

int
dc_shreg_list(const struct dc_shreg *reg, struct dc_entry *out, int max)
{
	int i, n = 0;

	for (i = 0; i < reg->capacity && n < max; i++)
		if (slot_read(&reg->slots[i], DC_MATCH_ANY, NULL, &out[n],
		    NULL))
			n++;
	return n;
}

uint64_t
dc_shreg_entry_gen(const struct dc_shreg *reg, const uint8_t id[16])
{
	uint64_t gen = 0;

	if (shreg_find(reg, DC_MATCH_ID, id, NULL, &gen) != DC_OK)
		gen = 0;
	return gen;
}

struct dc_worker_stats *
dc_shreg_stats(struct dc_shreg *reg, int i)
{
	if (i < 0 || i >= DC_MAX_WORKERS)
		return NULL;
	return &reg->stats[i].st;
}

const char *const dc_priv_names[DC_PRIV_COUNT] = {
	"superuser", "createrole", "pg_read_server_files",
	"pg_write_server_files", "pg_execute_server_program",
	"pg_signal_backend",
};

void
dc_priv_format(unsigned privs, char *out, size_t outsz)
{
	size_t n = 0;
	int i;

	assert(outsz > 0);
	out[0] = '\0';
	for (i = 0; i < DC_PRIV_COUNT; i++)
		if ((privs & (1u << i)) && n < outsz)
			n += (size_t)snprintf(out + n, outsz - n, "%s%s",
			    n > 0 ? ", " : "", dc_priv_names[i]);
}

/*
 * The next of the live workers' counter slots for target id, from *pos
 * (0 to start), or NULL after the last.
 */
static struct dc_target_stats *
target_slot_next(struct dc_shreg *reg, const uint8_t id[16], int *pos)
{
	struct dc_target_stats *ts;
	int i, k;

	for (; *pos < DC_MAX_WORKERS * DC_METRIC_TARGETS; (*pos)++) {
		i = *pos / DC_METRIC_TARGETS;
		k = *pos % DC_METRIC_TARGETS;
		if (__atomic_load_n(&reg->stats[i].st.pid,
		    __ATOMIC_RELAXED) == 0) {
			*pos = (i + 1) * DC_METRIC_TARGETS - 1;
			continue;
		}
		ts = &reg->stats[i].st.targets[k];
		if (memcmp(ts->id, id, 16) == 0) {
			(*pos)++;
			return ts;
		}
	}
	return NULL;
}

unsigned
dc_shreg_target_privileges(struct dc_shreg *reg, const uint8_t id[16])
{
	struct dc_target_stats *ts;
	unsigned privs = 0;
	int pos = 0;

	while ((ts = target_slot_next(reg, id, &pos)) != NULL)
		privs |= (unsigned)__atomic_load_n(&ts->privileges,
		    __ATOMIC_RELAXED);
	return privs;
}

int
dc_shreg_target_privileges_seen(struct dc_shreg *reg, const uint8_t id[16],
    unsigned privs)
{
	struct dc_target_stats *ts;
	int pos = 0;

	while ((ts = target_slot_next(reg, id, &pos)) != NULL)
		if (__atomic_load_n(&ts->privileges, __ATOMIC_RELAXED) == privs)
			return 1;
	return 0;
}

void
dc_shreg_count_resync(struct dc_shreg *reg)
{
	atomic_fetch_add_explicit(&reg->resyncs, 1, memory_order_relaxed);
}

uint64_t
dc_shreg_resyncs(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->resyncs, memory_order_relaxed);
}

void
dc_shreg_set_sysdb_up(struct dc_shreg *reg, int up)
{
	atomic_store_explicit(&reg->sysdb_up, up, memory_order_relaxed);
}

void
dc_shreg_beat(struct dc_shreg *reg, uint64_t now_ms)
{
	atomic_store_explicit(&reg->master_beat, now_ms, memory_order_relaxed);
}

uint64_t
dc_shreg_last_beat(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->master_beat, memory_order_relaxed);
}

int
dc_shreg_sysdb_up(const struct dc_shreg *reg)
{
	return atomic_load_explicit(&reg->sysdb_up, memory_order_relaxed);
}
