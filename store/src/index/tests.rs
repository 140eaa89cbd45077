//! The index under concurrent writers, lookups and filter rescans.

use std::sync::atomic::Ordering;

use super::writer::block_on;
use super::*;

/// Writers racing with the scans that grow a small miss filter: every
/// key written is found afterwards, and the grown filter still rules
/// out most missing keys.
#[test]
fn miss_filter_grows_under_writes_without_losing_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let small = KeyFilter::with_min_bits(1 << 12); // 256 keys
    let index = Index::open_with(&tmp.path().join("db"), Some(small), CACHE_BYTES).unwrap();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let index = index.clone();
            std::thread::spawn(move || {
                for i in 0..3_000 {
                    let rec = Record::live(vec![format!("v{w}")], None);
                    let op = Write::Put(format!("/w{w}/{i}").into_bytes(), rec.encode());
                    index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    while index.level_ref().core.filter.is_scanning() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for w in 0..2 {
        for i in 0..3_000 {
            let key = format!("/w{w}/{i}");
            assert!(
                index.get_raw_blocking(key.as_bytes()).unwrap().is_some(),
                "{key} lost"
            );
        }
    }
    let ruled_out = (0..1_000)
        .filter(|i| {
            !index
                .level_ref()
                .core
                .filter
                .may_contain(format!("/missing/{i}").as_bytes())
        })
        .count();
    assert!(
        ruled_out > 950,
        "the grown filter rules out only {ruled_out} of 1,000"
    );
    index.close();
}

/// A write waits for the writer thread without blocking its caller: a
/// runtime thread goes on serving while LevelDB is busy (here the lock
/// is held, as a compaction inside a write holds it), and lookups of
/// cached records are answered meanwhile.
#[test]
fn a_slow_write_does_not_block_the_caller() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
    let rec = Record::live(vec!["v".to_string()], None).encode();
    let put = |key: &[u8]| vec![Write::Put(key.to_vec(), rec.clone())];
    index.apply_blocking(put(b"a"), Durability::Synced).unwrap();
    assert!(
        index.get_raw_blocking(b"a").unwrap().is_some(),
        "read once, now cached"
    );

    let busy = index.level_ref().core.lock();
    let mut write = Box::pin(index.apply(put(b"b"), Durability::Synced));
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..3 {
        assert!(write.as_mut().poll(&mut cx).is_pending());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(index.get_raw_blocking(b"a").unwrap().is_some());
    drop(busy);
    block_on(write).unwrap();
    assert!(index.get_raw_blocking(b"b").unwrap().is_some());
    index.close();
}

/// A lookup that misses the cache while the writer is writing waits
/// behind the write without blocking its caller, and then finds the
/// record.
#[test]
fn a_lookup_during_a_write_waits_without_blocking_the_caller() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
    let rec = Record::live(vec!["v".to_string()], None).encode();
    let op = Write::Put(b"c".to_vec(), rec.clone());
    index.apply_blocking(vec![op], Durability::Synced).unwrap();

    // As the writer thread stands during a long write: flag up, lock held.
    let busy = index.level_ref().core.lock();
    index
        .level_ref()
        .core
        .writing
        .store(true, Ordering::Release);
    let mut lookup = Box::pin(index.level_ref().get_raw(b"c"));
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..3 {
        assert!(lookup.as_mut().poll(&mut cx).is_pending());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    index
        .level_ref()
        .core
        .writing
        .store(false, Ordering::Release);
    drop(busy);
    assert_eq!(block_on(lookup).as_deref(), Some(&rec[..]));
    // The writer's lookup filled the cache: no lock needed now.
    let _busy = index.level_ref().core.lock();
    let mut again = Box::pin(index.level_ref().get_raw(b"c"));
    assert!(matches!(again.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
}

/// Lookups through a small record cache (evicting all the time) always
/// see the last write that returned: new records, replaced ones,
/// deleted ones, from several threads at once.
#[test]
fn lookups_see_every_returned_write_through_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, 16 * 1024).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let index = index.clone();
            std::thread::spawn(move || {
                let put = |key: &str, volume: &str| {
                    let rec = Record::live(vec![volume.to_string()], None);
                    let op = Write::Put(key.as_bytes().to_vec(), rec.encode());
                    index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                };
                let volumes = |key: &str| {
                    index
                        .get_blocking(key.as_bytes())
                        .unwrap()
                        .map(|r| r.volumes)
                };
                for i in 0..2_000 {
                    let key = format!("/t{t}/{}", i % 300);
                    put(&key, &format!("a{i}"));
                    assert_eq!(volumes(&key), Some(vec![format!("a{i}")]));
                    put(&key, &format!("b{i}"));
                    assert_eq!(volumes(&key), Some(vec![format!("b{i}")]));
                    if i % 3 == 0 {
                        let op = Write::Delete(key.as_bytes().to_vec());
                        index.apply_blocking(vec![op], Durability::Relaxed).unwrap();
                        assert_eq!(volumes(&key), None, "{key} deleted");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    index.close();
}

fn key(i: usize) -> Vec<u8> {
    format!("/s/{i:05}").into_bytes()
}

/// Scans do not lose or repeat a key, honour their start and prefix, and
/// skip ahead where the callback seeks; a writer meanwhile does not disturb
/// them.
#[test]
fn scans_cross_pages_seek_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
    let n = 3 * core::SCAN_PAGE + 17;
    let ops = (0..n).map(|i| Write::Put(key(i), b"v".to_vec())).collect();
    index.apply_blocking(ops, Durability::Relaxed).unwrap();
    let outside = vec![
        Write::Put(b"/r/x".to_vec(), b"v".to_vec()),
        Write::Put(b"/t/x".to_vec(), b"v".to_vec()),
    ];
    index.apply_blocking(outside, Durability::Relaxed).unwrap();

    let writer = {
        let index = index.clone();
        std::thread::spawn(move || {
            for j in 0..200 {
                let late = vec![Write::Put(key(n + 1 + j), b"v".to_vec())];
                index.apply_blocking(late, Durability::Relaxed).unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    index
        .scan(b"/s/", &key(5), |k, _| {
            seen.push(k.to_vec());
            true
        })
        .unwrap();
    writer.join().unwrap();
    let want: Vec<Vec<u8>> = (5..n).map(key).collect();
    assert_eq!(&seen[..want.len()], &want[..], "keys lost or repeated");

    let mut seeks = Vec::new();
    index
        .scan_steps(b"/s/", b"", |k, _| {
            seeks.push(k.to_vec());
            match seeks.len() {
                1 => Step::Seek(key(2000)),
                3 => Step::Stop,
                _ => Step::Next,
            }
        })
        .unwrap();
    assert_eq!(seeks, vec![key(0), key(2000), key(2001)]);

    let backwards = index.scan_steps(b"/s/", &key(10), |_, _| Step::Seek(key(1)));
    assert!(backwards.is_err(), "a scan may only seek forward");
    index.close();
}

/// Past the memtable entries one view copies, a scan takes another view
/// and goes on where it was, seeks included, while a writer adds keys and
/// LevelDB flushes and compacts under it.
#[test]
fn scans_cross_views_under_writes_and_compactions() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
    let n = 3 * views::MEM_ENTRIES + 123;
    let ops = (0..n)
        .map(|i| Write::Put(key(i), vec![b'v'; 100]))
        .collect();
    index.apply_blocking(ops, Durability::Relaxed).unwrap();
    let gone = vec![Write::Delete(key(7)), Write::Delete(key(n - 1))];
    index.apply_blocking(gone, Durability::Relaxed).unwrap();
    let writer = {
        let index = index.clone();
        std::thread::spawn(move || {
            for j in 0..300 {
                let ops = (0..100)
                    .map(|i| Write::Put(format!("/w/{j}/{i}").into_bytes(), vec![b'w'; 400]));
                index
                    .apply_blocking(ops.collect(), Durability::Relaxed)
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let seek_from = key(views::MEM_ENTRIES - 3);
    let seek_to = key(views::MEM_ENTRIES + 500);
    index
        .scan_steps(b"/s/", b"", |k, _| {
            seen.push(k.to_vec());
            if k == seek_from.as_slice() {
                Step::Seek(seek_to.clone())
            } else {
                Step::Next
            }
        })
        .unwrap();
    writer.join().unwrap();
    let want: Vec<Vec<u8>> = (0..n - 1)
        .filter(|&i| i != 7)
        .filter(|&i| i <= views::MEM_ENTRIES - 3 || i >= views::MEM_ENTRIES + 500)
        .map(key)
        .collect();
    assert_eq!(seen.len(), want.len());
    assert!(seen == want, "keys lost, repeated or out of order");
    index.close();
}

/// A view whose tables a compaction deleted before they were read fails,
/// and the scan is finished under the lock from where the view stopped.
#[test]
fn a_view_that_lost_its_tables_is_finished_under_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::open_with(&tmp.path().join("db"), None, CACHE_BYTES).unwrap();
    let write_all = |fill: u8| {
        let ops = (0..3000)
            .map(|i| Write::Put(key(i), vec![fill; 200]))
            .collect();
        index.apply_blocking(ops, Durability::Relaxed).unwrap();
        index
            .level_ref()
            .core
            .lock()
            .compact_range(b"/s/", b"/t/")
            .unwrap();
    };
    write_all(b'a');
    let view = index
        .level_ref()
        .core
        .lock()
        .read_view(b"/s/", b"/s/", views::MEM_ENTRIES)
        .unwrap();
    write_all(b'b');
    let mut from = b"/s/".to_vec();
    let mut seen = Vec::new();
    let mut give = |k: &[u8], _: &[u8]| {
        seen.push(k.to_vec());
        Step::Next
    };
    let end = index
        .level_ref()
        .core
        .views
        .scan(&view, b"/s/", &mut from, &mut give)
        .unwrap();
    assert!(matches!(end, views::ViewEnd::Failed));
    index
        .level_ref()
        .core
        .scan_locked(b"/s/", from, give)
        .unwrap();
    assert!(seen == (0..3000).map(key).collect::<Vec<_>>());
    index.close();
}
