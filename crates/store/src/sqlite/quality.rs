//! Quality series in SQLite. One row per user per call in `quality_keys` (with the times of
//! its first and newest samples: crash recovery reads the newest); one compressed block per
//! user and span of [`SPAN_SECS`] in `quality_blocks`, its id packing (span, key) so that
//! blocks are appended in order; and the spans still being written, in the writer's memory and,
//! for a crash, in `quality_recent` (one small plain body per append and user-span), folded
//! into a block once the span is over. Readers take blocks and recent rows. Also the one-time
//! move of the old row-per-sample table into blocks.

use crate::quality_body::{self, Codec, Part, Series, SeriesRef};
use crate::{QualityQuery, QualitySample, QualitySeries, StoreError, StoreResult};
use hearth_types::{UnixSecs, UserId};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;

/// Cached user keys before the cache starts over (it refills from the table).
const KEY_CACHE: usize = 65_536;
/// Seconds of one block: long enough that a series' header is small beside its points, short
/// enough that a query decodes little outside its window.
const SPAN_SECS: i64 = 300;
/// A span is folded this long after it ended (samples arrive within a second or two).
const FOLD_GRACE_SECS: i64 = 10;
/// User-spans folded into blocks per append at most, so an append stays short.
const FOLD_PER_APPEND: usize = 16;
/// Keys a block id can hold (its low 32 bits).
const KEYS: i64 = 1 << 32;
/// Spans a block id can hold (the 31 bits above): far beyond the year 10,000.
const SPANS: i64 = 1 << 31;
/// Old-format calls moved per transaction while migrating.
const LEGACY_CALLS_PER_TX: usize = 16;

/// The writer's memory of the quality tables: user keys it has seen, and the points of the
/// user-spans not folded yet (each also in `quality_recent`). Changed only after a commit, so
/// a failed append leaves it true.
#[derive(Default)]
pub(super) struct QualityState {
    keys: HashMap<(u32, String, String), i64>,
    open: BTreeMap<(i64, i64), Vec<Series>>,
    /// Newest sample time seen.
    newest: i64,
    codec: Codec,
}

thread_local! {
    /// Readers' zstd contexts, one per thread.
    static READ_CODEC: RefCell<Codec> = RefCell::default();
}

impl QualityState {
    /// Picks up the spans a crash left unfolded.
    pub(super) fn load(conn: &Connection) -> StoreResult<Self> {
        let mut st = QualityState::default();
        let mut stmt = conn.prepare("SELECT span, key, body FROM quality_recent ORDER BY id")?;
        let mut rows = stmt.query([])?;
        // Straight into the open spans: names are copied once per series and span, not once
        // per recent row.
        let mut points = Vec::new();
        let mut newest = i64::MIN;
        while let Some(r) = rows.next()? {
            let (span, key): (i64, i64) = (r.get(0)?, r.get(1)?);
            let into = st.open.entry((span, key)).or_default();
            let mut next = 0;
            st.codec.decode(
                blob(r.get_ref(2)?)?,
                span * SPAN_SECS,
                |_| true,
                |peer, metric, times, values| {
                    points.clear();
                    points.extend(times.iter().copied().zip(values.iter().copied()));
                    newest = times.iter().copied().fold(newest, i64::max);
                    let part = Part {
                        peer,
                        metric,
                        points: &points,
                    };
                    quality_body::merge_one(into, part, &mut next);
                },
            )?;
        }
        st.newest = st.newest.max(newest);
        Ok(st)
    }

    /// Forgets cached keys (after a purge deleted some).
    pub(super) fn forget_keys(&mut self) {
        self.keys.clear();
    }

    /// Takes out up to `n` open user-spans before `cutoff` (to fold).
    fn take_before(&mut self, cutoff: i64, n: usize) -> Vec<((i64, i64), Vec<Series>)> {
        let keys: Vec<(i64, i64)> = self
            .open
            .range(..(cutoff, i64::MIN))
            .take(n)
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.open.remove(&k).map(|v| (k, v)))
            .collect()
    }

    /// Puts back user-spans whose fold did not commit.
    fn put_back(&mut self, spans: Vec<((i64, i64), Vec<Series>)>) {
        for (k, mut v) in spans {
            // Anything added since goes after what was there.
            if let Some(later) = self.open.remove(&k) {
                quality_body::merge(&mut v, later);
            }
            self.open.insert(k, v);
        }
    }
}

fn block_id(key: i64, span: i64) -> i64 {
    (span << 32) | key
}

/// The span of a time, if a block id can hold it.
fn span_of(t: i64) -> Option<i64> {
    let m = t.div_euclid(SPAN_SECS);
    (0..SPANS).contains(&m).then_some(m)
}

/// A series of one append: peer, metric, and its points' range in [`Groups::points`].
type Slot<'a> = (&'a str, &'a str, Range<usize>);

/// One append's samples, by user-span, with what the writer state must learn on commit.
struct Groups<'a> {
    /// Each user-span (span, key) with its series.
    spans: Vec<((i64, i64), Vec<Slot<'a>>)>,
    /// The points of every series, series after series, each in its recorded order.
    points: Vec<(i64, f64)>,
    new_keys: Vec<((u32, String, String), i64)>,
    /// Per key, the first and last sample times.
    seen: HashMap<i64, (i64, i64)>,
}

impl<'a> Groups<'a> {
    /// The series of each user-span, borrowing their points.
    fn parts(&self) -> impl Iterator<Item = ((i64, i64), Vec<Part<'_>>)> + '_ {
        self.spans.iter().map(|(k, series)| {
            let parts = series
                .iter()
                .map(|(peer, metric, r)| Part {
                    peer,
                    metric,
                    points: &self.points[r.clone()],
                })
                .collect();
            (*k, parts)
        })
    }
}

/// Sorts samples into user-spans, creating user keys as needed. Allocates per append, not per
/// series: a counting sort puts every series' points in one array.
fn group<'a>(
    tx: &Transaction,
    st: &QualityState,
    samples: &'a [QualitySample],
) -> StoreResult<Groups<'a>> {
    let mut local: HashMap<(u32, &str, &str), i64> = HashMap::default();
    let mut span_index: HashMap<(i64, i64), usize> = HashMap::default();
    let mut series_index: HashMap<(usize, &str, &str), usize> = HashMap::default();
    // Per series: its user-span and names; per sample kept: its series.
    let mut series: Vec<(usize, &str, &str)> = Vec::new();
    let mut tagged: Vec<(usize, i64, f64)> = Vec::with_capacity(samples.len());
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut new_keys = Vec::new();
    let mut seen: HashMap<i64, (i64, i64)> = HashMap::default();
    for s in samples {
        if s.value.is_nan() {
            // A sample without a value says nothing.
            tracing::debug!(metric = %s.metric, "dropping NaN quality sample");
            continue;
        }
        let Some(span) = span_of(s.time.0) else {
            tracing::debug!(time = s.time.0, "dropping quality sample out of range");
            continue;
        };
        let id = (s.sdk_app_id.0, s.comm_id.as_str(), s.user_id.as_str());
        let key = match local.get(&id) {
            Some(&k) => k,
            None => {
                let owned = (id.0, id.1.to_owned(), id.2.to_owned());
                let k = match st.keys.get(&owned) {
                    Some(&k) => k,
                    None => {
                        let k = create_key(tx, &owned, s.time.0)?;
                        new_keys.push((owned, k));
                        k
                    }
                };
                local.insert(id, k);
                k
            }
        };
        let first_last = seen.entry(key).or_insert((s.time.0, s.time.0));
        *first_last = (first_last.0.min(s.time.0), first_last.1.max(s.time.0));
        let at = *span_index.entry((span, key)).or_insert_with(|| {
            spans.push((span, key));
            spans.len() - 1
        });
        let i = *series_index
            .entry((at, s.peer.as_str(), s.metric.as_str()))
            .or_insert_with(|| {
                series.push((at, s.peer.as_str(), s.metric.as_str()));
                series.len() - 1
            });
        tagged.push((i, s.time.0, s.value));
    }
    // Counting sort by series (stable: each series keeps its recorded order).
    let mut start = vec![0usize; series.len() + 1];
    for t in &tagged {
        start[t.0 + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let ranges: Vec<Range<usize>> = start.windows(2).map(|w| w[0]..w[1]).collect();
    let mut points = vec![(0i64, 0f64); tagged.len()];
    for (i, t, v) in tagged {
        points[start[i]] = (t, v);
        start[i] += 1;
    }
    let mut by_span: Vec<((i64, i64), Vec<Slot>)> =
        spans.into_iter().map(|k| (k, Vec::new())).collect();
    for ((at, peer, metric), r) in series.into_iter().zip(ranges) {
        by_span[at].1.push((peer, metric, r));
    }
    Ok(Groups {
        spans: by_span,
        points,
        new_keys,
        seen,
    })
}

fn create_key(tx: &Transaction, id: &(u32, String, String), time: i64) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO quality_keys (sdk_app_id, comm_id, user_id, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (comm_id, user_id, sdk_app_id) DO NOTHING",
    )?
    .execute(params![id.0, id.1, id.2, time])?;
    let key: i64 = tx
        .prepare_cached(
            "SELECT key FROM quality_keys WHERE comm_id = ?2 AND user_id = ?3 AND sdk_app_id = ?1",
        )?
        .query_row(params![id.0, id.1, id.2], |r| r.get(0))?;
    if !(0..KEYS).contains(&key) {
        return Err(StoreError::Corrupt(format!(
            "quality key {key} is beyond what a block id holds"
        )));
    }
    Ok(key)
}

fn note_seen(tx: &Transaction, g: &Groups) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE quality_keys SET first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?3)
         WHERE key = ?1",
    )?;
    for (key, (first, last)) in &g.seen {
        stmt.execute(params![key, first, last])?;
    }
    Ok(())
}

/// Appends samples (one transaction) and folds finished spans into blocks.
pub(super) fn append(
    conn: &mut Connection,
    st: &mut QualityState,
    samples: &[QualitySample],
    now: UnixSecs,
) -> StoreResult<()> {
    if samples.is_empty() {
        return Ok(());
    }
    // Spans that ended a grace period before the newest sample are folded (a sample stamped
    // in the future counts as now). Samples arriving for a span already folded are folded
    // into its block by a later append.
    let clock = st.newest.min(now.0.saturating_add(60));
    let cutoff = (clock - FOLD_GRACE_SECS).div_euclid(SPAN_SECS);
    let mut folds = st.take_before(cutoff, FOLD_PER_APPEND);
    let done = write(conn, st, samples, &mut folds);
    match done {
        Ok(g) => {
            for (k, parts) in g.parts() {
                quality_body::merge(st.open.entry(k).or_default(), parts);
            }
            if st.keys.len() + g.new_keys.len() > KEY_CACHE {
                st.keys.clear();
            }
            st.keys.extend(g.new_keys);
            for (_, (_, last)) in g.seen {
                st.newest = st.newest.max(last);
            }
            Ok(())
        }
        Err(e) => {
            st.put_back(folds);
            Err(e)
        }
    }
}

fn write<'a>(
    conn: &mut Connection,
    st: &mut QualityState,
    samples: &'a [QualitySample],
    folds: &mut [((i64, i64), Vec<Series>)],
) -> StoreResult<Groups<'a>> {
    let tx = conn.transaction()?;
    // Folds first: a fold drops the recent rows of its span, which must not include this
    // append's (their points are not in the fold).
    for ((span, key), series) in folds.iter_mut() {
        fold(&tx, &mut st.codec, *key, *span, series)?;
    }
    let g = group(&tx, st, samples)?;
    note_seen(&tx, &g)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO quality_recent (key, span, samples, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for ((span, key), parts) in g.parts() {
            let n: usize = parts.iter().map(|p| p.points.len()).sum();
            let body = st.codec.encode(span * SPAN_SECS, &parts, false);
            stmt.execute(params![key, span, n as i64, body])?;
        }
    }
    tx.commit()?;
    Ok(g)
}

/// Folds every open span (at shutdown), in transactions of a bounded size.
pub(super) fn fold_all(conn: &mut Connection, st: &mut QualityState) -> StoreResult<()> {
    loop {
        let mut batch = st.take_before(i64::MAX, FOLD_PER_APPEND);
        if batch.is_empty() {
            return Ok(());
        }
        let done = (|| {
            let tx = conn.transaction()?;
            for ((span, key), series) in batch.iter_mut() {
                fold(&tx, &mut st.codec, *key, *span, series)?;
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = done {
            st.put_back(batch);
            return Err(e);
        }
    }
}

/// Moves one user-span from memory into its block and drops its recent rows.
fn fold(
    tx: &Transaction,
    codec: &mut Codec,
    key: i64,
    span: i64,
    series: &mut Vec<Series>,
) -> StoreResult<()> {
    add_to_block(tx, codec, key, span, series)?;
    tx.prepare_cached("DELETE FROM quality_recent WHERE key = ?1 AND span = ?2")?
        .execute(params![key, span])?;
    Ok(())
}

/// Writes `series` into the block of (key, span), after what the block already holds.
fn add_to_block(
    tx: &Transaction,
    codec: &mut Codec,
    key: i64,
    span: i64,
    series: &mut Vec<Series>,
) -> StoreResult<()> {
    let id = block_id(key, span);
    let old: Option<Vec<u8>> = tx
        .prepare_cached("SELECT body FROM quality_blocks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let mut merged;
    let all = match old {
        Some(body) => {
            merged = codec.decode_all(&body, span * SPAN_SECS)?;
            quality_body::merge(&mut merged, series.clone());
            &mut merged
        }
        None => series,
    };
    let mut n = 0;
    for s in all.iter_mut() {
        s.sort();
        n += s.points.len();
    }
    let body = codec.encode(span * SPAN_SECS, all, true);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO quality_blocks (id, samples, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, n as i64, body])?;
    Ok(())
}

/// The series of a call in `[start, end]`, by user (key order), then peer and metric.
pub(super) fn quality(conn: &Connection, q: &QualityQuery) -> StoreResult<Vec<QualitySeries>> {
    if q.end.0 < q.start.0 {
        return Ok(Vec::new());
    }
    let keys: Vec<(i64, String, i64, i64)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT key, user_id, first_seen, last_seen FROM quality_keys
             WHERE comm_id = ?2 AND sdk_app_id = ?1 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![q.sdk_app_id.0, q.comm_id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let span = |t: i64| t.div_euclid(SPAN_SECS).clamp(0, SPANS - 1);
    let want = |m: &str| q.metrics.is_empty() || q.metrics.iter().any(|x| x == m);
    let window = q.start.0..=q.end.0;
    let mut out = Vec::new();
    let mut block = conn.prepare_cached("SELECT body FROM quality_blocks WHERE id = ?1")?;
    let mut recent = conn.prepare_cached(
        "SELECT span, body FROM quality_recent WHERE key = ?1 AND span BETWEEN ?2 AND ?3
         ORDER BY span, id",
    )?;
    READ_CODEC.with_borrow_mut(|codec| -> StoreResult<()> {
        for (key, user, first_seen, last_seen) in keys {
            if !q.user_ids.is_empty() && !q.user_ids.iter().any(|u| u.as_str() == user) {
                continue;
            }
            let (first, last) = (
                span(q.start.0.max(first_seen)),
                span(q.end.0.min(last_seen)),
            );
            let mut acc = Accumulator {
                spans: (last - first + 1).max(1) as usize,
                ..Accumulator::default()
            };
            for s in first..=last {
                let mut rows = block.query([block_id(key, s)])?;
                if let Some(r) = rows.next()? {
                    acc.body(codec, blob(r.get_ref(0)?)?, s, &want, &window)?;
                }
            }
            let mut rows = recent.query(params![key, first, last])?;
            while let Some(r) = rows.next()? {
                let s: i64 = r.get(0)?;
                acc.body(codec, blob(r.get_ref(1)?)?, s, &want, &window)?;
            }
            let mut series = acc.series;
            series.sort_by(|a, b| (&a.peer, &a.metric).cmp(&(&b.peer, &b.metric)));
            for mut s in series {
                if s.points.is_empty() {
                    continue;
                }
                s.sort();
                out.push(QualitySeries {
                    user_id: UserId(user.clone()),
                    peer: s.peer,
                    metric: s.metric,
                    points: s
                        .points
                        .into_iter()
                        .map(|(t, v)| (UnixSecs(t), v))
                        .collect(),
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// A user's series gathered from its bodies. The bodies of one user list their series in
/// much the same order, so the next series is looked for after the last one first.
#[derive(Default)]
struct Accumulator {
    series: Vec<Series>,
    next: usize,
    /// Spans the query covers (to size a series at its first body).
    spans: usize,
}

impl Accumulator {
    /// Adds the wanted series of one body (of span `span`) inside `window`.
    fn body(
        &mut self,
        codec: &mut Codec,
        body: &[u8],
        span: i64,
        want: &dyn Fn(&str) -> bool,
        window: &std::ops::RangeInclusive<i64>,
    ) -> StoreResult<()> {
        self.next = 0;
        codec.decode(body, span * SPAN_SECS, want, |p, m, t, v| {
            self.add(p, m, t, v, window)
        })
    }

    fn add(
        &mut self,
        peer: &str,
        metric: &str,
        times: &[i64],
        values: &[f64],
        window: &std::ops::RangeInclusive<i64>,
    ) {
        let same = |s: &Series| s.peer == peer && s.metric == metric;
        let at = match self.series.get(self.next) {
            Some(s) if same(s) => self.next,
            _ => match self.series.iter().position(same) {
                Some(i) => i,
                None => {
                    self.series.push(Series {
                        peer: peer.to_owned(),
                        metric: metric.to_owned(),
                        points: Vec::with_capacity(times.len() * self.spans),
                    });
                    self.series.len() - 1
                }
            },
        };
        self.next = at + 1;
        let points = &mut self.series[at].points;
        let pairs = times.iter().copied().zip(values.iter().copied());
        let (lo, hi) = times
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        if window.contains(&lo) && window.contains(&hi) {
            // The usual case, a body wholly inside the window: no test per point.
            points.extend(pairs);
        } else {
            points.extend(pairs.filter(|p| window.contains(&p.0)));
        }
    }
}

fn blob(v: rusqlite::types::ValueRef<'_>) -> StoreResult<&[u8]> {
    v.as_blob()
        .map_err(|e| StoreError::Corrupt(format!("quality block body: {e}")))
}

/// Deletes the series of one call; returns how many samples went.
pub(super) fn purge_call(tx: &Transaction, app: i64, comm_id: &str) -> StoreResult<u64> {
    let keys: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT key, first_seen, last_seen FROM quality_keys
             WHERE comm_id = ?2 AND sdk_app_id = ?1",
        )?;
        let rows = stmt.query_map(params![app, comm_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut samples = 0i64;
    for (key, first, last) in keys {
        let spans = first.div_euclid(SPAN_SECS).max(0)..=last.div_euclid(SPAN_SECS).min(SPANS - 1);
        for span in spans {
            let id = block_id(key, span);
            samples += tx
                .prepare_cached("SELECT samples FROM quality_blocks WHERE id = ?1")?
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()?
                .unwrap_or(0);
            tx.prepare_cached("DELETE FROM quality_blocks WHERE id = ?1")?
                .execute([id])?;
        }
        samples += tx
            .prepare_cached("SELECT coalesce(sum(samples), 0) FROM quality_recent WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, i64>(0))?;
        tx.prepare_cached("DELETE FROM quality_recent WHERE key = ?1")?
            .execute([key])?;
        tx.prepare_cached("DELETE FROM quality_keys WHERE key = ?1")?
            .execute([key])?;
    }
    Ok(samples as u64)
}

/// Moves the samples of the old one-row-per-sample table (schema 3 and before) into blocks,
/// a few calls per transaction, then drops the table. A crash in between resumes where it
/// stopped: a call's rows go in the same transaction that writes its blocks.
pub(super) fn move_legacy_samples(conn: &mut Connection, st: &mut QualityState) -> StoreResult<()> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'quality_samples'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(());
    }
    let total: i64 = conn.query_row("SELECT count(*) FROM quality_samples", [], |r| r.get(0))?;
    tracing::info!(samples = total, "moving quality samples into blocks");
    let mut moved = 0i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let calls: Vec<(i64, String)> = {
            let mut stmt =
                tx.prepare("SELECT DISTINCT sdk_app_id, comm_id FROM quality_samples LIMIT ?1")?;
            let rows =
                stmt.query_map([LEGACY_CALLS_PER_TX as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        if calls.is_empty() {
            tx.execute_batch("DROP TABLE quality_samples")?;
            tx.commit()?;
            break;
        }
        let mut new_keys = Vec::new();
        for (app, comm_id) in &calls {
            let samples = legacy_rows(&tx, *app, comm_id)?;
            moved += samples.len() as i64;
            let g = group(&tx, st, &samples)?;
            note_seen(&tx, &g)?;
            for ((span, key), parts) in g.parts() {
                let mut series = parts.into_iter().map(SeriesRef::into_series).collect();
                add_to_block(&tx, &mut st.codec, key, span, &mut series)?;
            }
            new_keys.extend(g.new_keys);
            tx.prepare("DELETE FROM quality_samples WHERE comm_id = ?2 AND sdk_app_id = ?1")?
                .execute(params![app, comm_id])?;
        }
        tx.commit()?;
        st.keys.extend(new_keys);
        if st.keys.len() > KEY_CACHE {
            st.keys.clear();
        }
        tracing::info!(moved, total, "quality samples moved");
    }
    tracing::info!(
        moved,
        "quality samples moved into blocks; old table dropped"
    );
    Ok(())
}

fn legacy_rows(tx: &Transaction, app: i64, comm_id: &str) -> StoreResult<Vec<QualitySample>> {
    let mut stmt = tx.prepare(
        "SELECT sdk_app_id, comm_id, user_id, peer, metric, time, value FROM quality_samples
         WHERE comm_id = ?2 AND sdk_app_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![app, comm_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(QualitySample {
            sdk_app_id: super::codec::app_from_column(r.get(0)?)?,
            comm_id: hearth_types::CommId(r.get(1)?),
            user_id: UserId(r.get(2)?),
            peer: r.get(3)?,
            metric: r.get(4)?,
            time: UnixSecs(r.get(5)?),
            value: r.get(6)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{schema, SqliteStore};
    use crate::{LeaveReason, QualityQuery, SessionQuery, Store};
    use hearth_types::{CommId, SdkAppId, UnixSecs, UserId};
    use rusqlite::{params, Connection};
    use std::collections::BTreeMap;

    type Answer = BTreeMap<(String, String, String), Vec<(i64, u64)>>;

    /// The schema-3 query, verbatim, grouped per series as the API did.
    fn old_answer(conn: &Connection, comm: &str, start: i64, end: i64, metrics: &[&str]) -> Answer {
        let mut stmt = conn
            .prepare(
                "SELECT sdk_app_id, comm_id, user_id, peer, metric, time, value FROM quality_samples
                 WHERE comm_id = ?2 AND time BETWEEN ?3 AND ?4 AND sdk_app_id = ?1
                   AND (?5 OR user_id IN (SELECT value FROM json_each(?6)))
                   AND (?7 OR metric IN (SELECT value FROM json_each(?8)))
                 ORDER BY time, id",
            )
            .unwrap();
        let mut rows = stmt
            .query(params![
                1,
                comm,
                start,
                end,
                true,
                "[]",
                metrics.is_empty(),
                serde_json::to_string(metrics).unwrap()
            ])
            .unwrap();
        let mut out = Answer::new();
        while let Some(r) = rows.next().unwrap() {
            let key = (r.get(2).unwrap(), r.get(3).unwrap(), r.get(4).unwrap());
            let v: f64 = r.get(6).unwrap();
            out.entry(key)
                .or_default()
                .push((r.get(5).unwrap(), v.to_bits()));
        }
        out
    }

    fn new_answer(
        store: &SqliteStore,
        comm: &str,
        start: i64,
        end: i64,
        metrics: &[&str],
    ) -> Answer {
        store
            .quality(&QualityQuery {
                sdk_app_id: SdkAppId(1),
                comm_id: CommId(comm.into()),
                start: UnixSecs(start),
                end: UnixSecs(end),
                user_ids: vec![],
                metrics: metrics.iter().map(|m| m.to_string()).collect(),
            })
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    (s.user_id.0, s.peer, s.metric),
                    s.points
                        .into_iter()
                        .map(|(t, v)| (t.0, v.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_schema_3_data_dir_is_moved_into_blocks_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let base = 1_790_000_000i64;
        let windows = [
            (base, base + 4_000, vec![]),
            (base + 61, base + 179, vec!["aBit", "bigvLoss"]),
            (base + 1_000, base + 1_000, vec![]),
            (base + 3_000, base + 9_000, vec!["aLoss"]),
        ];
        let calls = ["c1", "c2", "c3"];
        let mut before = Vec::new();
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, 3).unwrap();
            let tx = conn.transaction().unwrap();
            let mut x = 7u64;
            for (i, comm) in calls.iter().enumerate() {
                let open = i == 2; // cut off by a crash
                tx.execute(
                    "INSERT INTO calls (sdk_app_id, comm_id, room_kind, room_string, creator,
                       created_at, destroyed_at) VALUES (1, ?1, 'num', ?2, 'u0', ?3, ?4)",
                    params![comm, i.to_string(), base, (!open).then_some(base + 3_600)],
                )
                .unwrap();
                for u in 0..4 {
                    tx.execute(
                        "INSERT INTO sessions (comm_id, sdk_app_id, user_id, joined_at, left_at,
                           leave_reason, device_type, sdk_version, client_ip)
                         VALUES (?1, 1, ?2, ?3, ?4, ?5, 'web', '1', '192.0.2.1')",
                        params![
                            comm,
                            format!("u{u}"),
                            base,
                            (!open).then_some(base + 3_600),
                            (!open).then_some("normal")
                        ],
                    )
                    .unwrap();
                }
                // Two hours every 2 s, user 3 away for 10 minutes, some seconds twice.
                for step in 0..1_800i64 {
                    let t = base + 2 * step;
                    for u in 0..4 {
                        if u == 3 && (600..900).contains(&step) {
                            continue;
                        }
                        for (peer, metric) in [("", "aBit"), ("", "aLoss"), ("u9", "bigvLoss")] {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let v = match metric {
                                "aBit" => (x % 40_000) as f64,
                                _ if x.is_multiple_of(7) => (x % 1_000) as f64 / 3.0,
                                _ => 0.0,
                            };
                            let times = if x.is_multiple_of(97) { 2 } else { 1 };
                            for _ in 0..times {
                                tx.execute(
                                    "INSERT INTO quality_samples
                                       (sdk_app_id, comm_id, user_id, peer, metric, time, value)
                                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                                    params![comm, format!("u{u}"), peer, metric, t, v],
                                )
                                .unwrap();
                            }
                        }
                    }
                }
            }
            tx.commit().unwrap();
            for comm in calls {
                for (a, b, m) in &windows {
                    before.push(old_answer(&conn, comm, *a, *b, m));
                }
            }
            assert!(before
                .iter()
                .any(|a| a.values().map(Vec::len).sum::<usize>() > 20_000));
        }
        let store = SqliteStore::open(&path).unwrap();
        let mut after = Vec::new();
        for comm in calls {
            for (a, b, m) in &windows {
                after.push(new_answer(&store, comm, *a, *b, m));
            }
        }
        assert_eq!(before, after);
        store
            .pool
            .read(|c| {
                let gone: bool = c.query_row(
                    "SELECT count(*) = 0 FROM sqlite_master WHERE name = 'quality_samples'",
                    [],
                    |r| r.get(0),
                )?;
                assert!(gone, "the old table is dropped");
                Ok(())
            })
            .unwrap();
        // The open call's sessions close at their last sample (3,598 s in), not at start-up.
        assert_eq!(
            store
                .finish_open_calls(UnixSecs(base + 10_000), LeaveReason::ServerShutdown)
                .unwrap(),
            1
        );
        let sessions = store
            .sessions_of_call(&SessionQuery {
                sdk_app_id: SdkAppId(1),
                comm_id: CommId("c3".into()),
                start: UnixSecs(0),
                end: UnixSecs(i64::MAX),
                user_ids: vec![UserId("u3".into())],
                offset: 0,
                limit: 10,
            })
            .unwrap();
        assert_eq!(sessions.items[0].left_at, Some(UnixSecs(base + 3_598)));
        // Opening again finds nothing left to move.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(new_answer(&store, "c1", base, base + 4_000, &[]), before[0]);
    }
}
