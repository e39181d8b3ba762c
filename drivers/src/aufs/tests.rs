//! Unit tests of the aufs on-disk format, depth limit, readdir cost against overlay2,
//! copy-up, crash states and reopen. The conformance suite (drivers/tests) checks the
//! semantics against the model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::front::Layers;
use crate::hostfs;
use crate::overlay2::Overlay2;
use crate::store::Access;
use crate::union::testutil::*;
use layerlab_core::rules::Resolve;
use layerlab_core::{ops, ErrorKind, FileKind, LayerDriver};
use std::os::unix::fs::MetadataExt;

#[test]
fn layout_diff_layers_and_mnt() {
    let (t, mut d) = fresh::<AufsFlavor>(&[]);
    let root = t.path().join("store");
    let b = base_layer(&mut d);
    let c = child(&mut d, "c1", &b);
    d.commit(&c).unwrap();
    let e = child(&mut d, "sha256:e", &c);
    assert!(root.join("aufs/diff/base").is_dir());
    assert!(root.join("aufs/diff/base/.wh..wh.orph").is_dir());
    assert!(root.join("aufs/mnt/c1").is_dir());
    assert_eq!(d.backend().diff_dir(&e), root.join("aufs/diff/sha256+e"));
    // layers/<dir>: the parent chain, one id a line, parent first; empty for a base
    assert_eq!(
        std::fs::read_to_string(root.join("aufs/layers/base")).unwrap(),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(root.join("aufs/layers/sha256+e")).unwrap(),
        "c1\nbase\n"
    );
    assert_eq!(d.backend().parent_chain(&e).unwrap(), vec!["c1", "base"]);
    // the branch of the base holds exactly the entries written, plus the orphan dir
    assert_eq!(
        hostfs::list_names(&d.backend().diff_dir(&b)).unwrap(),
        vec![".wh..wh.orph", "d", "etc", "usr"]
    );
    // the housekeeping directory never shows
    assert_eq!(names(&mut d, &e, "/"), vec!["d", "etc", "usr"]);
    let facts = d.status().unwrap().facts;
    assert!(facts
        .iter()
        .any(|(k, v)| k == "whiteout format" && v == ".wh.<name> file"));
    assert!(facts.iter().any(|(k, v)| k == "max depth" && v == "127"));
    // removal takes all three
    d.remove_layer(&e).unwrap();
    assert!(!root.join("aufs/diff/sha256+e").exists());
    assert!(!root.join("aufs/layers/sha256+e").exists());
    assert!(!root.join("aufs/mnt/sha256+e").exists());
}

#[test]
fn whiteout_is_a_wh_file_and_recreated_dir_is_opaque() {
    let (_t, mut d, c) = whiteout_then_opaque_dir::<AufsFlavor>(
        |branch| {
            let md = std::fs::symlink_metadata(branch.join("etc/.wh.hosts")).unwrap();
            assert!(md.is_file());
            assert_eq!((md.size(), md.mode() & 0o7777), (0, 0o444));
            assert!(!branch.join("etc/hosts").exists());
        },
        |branch| {
            assert!(branch.join(".wh.d").is_file());
            assert!(!branch.join("d").exists(), "the copied-up /d went with it");
        },
        |branch| {
            // its whiteout gone
            assert!(branch.join("d").is_dir());
            assert!(branch.join("d/.wh..wh..opq").is_file());
            assert!(!branch.join(".wh.d").exists());
        },
    );
    write(&mut d, &c, "/d/new", b"n");
    assert_eq!(names(&mut d, &c, "/d"), vec!["new"]);
    // the changeset says it the OCI way
    let ch: Vec<String> = d
        .changes(&c)
        .unwrap()
        .into_iter()
        .map(|x| format!("{} {:?}", x.path, x.kind))
        .collect();
    assert!(ch.contains(&"/etc/hosts Deleted".to_string()), "{ch:?}");
    assert!(ch.contains(&"/d Modified".to_string()), "{ch:?}");
}

#[test]
fn an_entry_beside_its_own_whiteout_wins_and_hides_below() {
    // the state a crash can leave between the two steps of a change
    let (_t, d, _, c) = base_and_child::<AufsFlavor>(&[]);
    let branch = d.backend().diff_dir(&c);
    std::fs::create_dir(branch.join("d")).unwrap();
    std::fs::write(branch.join(".wh.d"), b"").unwrap();
    std::fs::create_dir(branch.join("etc")).unwrap();
    std::fs::write(branch.join("etc/hosts"), b"upper").unwrap();
    std::fs::write(branch.join("etc/.wh.hosts"), b"").unwrap();
    drop(d);
    let mut d = Layers::<Aufs>::open(&_t.path().join("store"), Access::Read).unwrap();
    assert_eq!(d.stat(&c, &p("/d")).unwrap().kind, FileKind::Dir);
    assert!(
        d.readdir(&c, &p("/d")).unwrap().is_empty(),
        "opaque: /d/f below is hidden"
    );
    assert_eq!(
        ops::read_all(&mut d, &c, &p("/etc/hosts")).unwrap(),
        b"upper"
    );
    assert_eq!(names(&mut d, &c, "/etc"), vec!["hosts", "passwd"]);
}

#[test]
fn renames_leave_and_replace_whiteouts() {
    let (_t, mut d, _, c) = base_and_child::<AufsFlavor>(&[]);
    let branch = d.backend().diff_dir(&c);
    // a lower file moved: copied up, moved, a whiteout at the old name
    d.rename(&c, &p("/etc/hosts"), &p("/etc/h2")).unwrap();
    assert!(branch.join("etc/.wh.hosts").is_file());
    assert!(branch.join("etc/h2").is_file());
    assert_eq!(names(&mut d, &c, "/etc"), vec!["h2", "passwd"]);
    // and moved back over its whiteout: the whiteout goes, nothing is left at h2
    d.rename(&c, &p("/etc/h2"), &p("/etc/hosts")).unwrap();
    assert!(!branch.join("etc/.wh.hosts").exists());
    assert!(!branch.join("etc/h2").exists());
    assert!(!branch.join("etc/.wh.h2").exists(), "nothing below at h2");
    assert_eq!(names(&mut d, &c, "/etc"), vec!["hosts", "passwd"]);
    // a new directory moved over a deleted lower one is opaque
    d.unlink(&c, &p("/d/f")).unwrap();
    d.rmdir(&c, &p("/d")).unwrap();
    d.mkdir(&c, &p("/n"), 0o711).unwrap();
    write(&mut d, &c, "/n/a", b"a");
    d.rename(&c, &p("/n"), &p("/d")).unwrap();
    assert!(branch.join("d/.wh..wh..opq").is_file());
    assert!(!branch.join(".wh.d").exists());
    assert_eq!(names(&mut d, &c, "/d"), vec!["a"]);
    // a lower directory cannot move (no dirren)
    assert_eq!(
        d.rename(&c, &p("/usr"), &p("/opt")).unwrap_err().kind(),
        ErrorKind::CrossDevice
    );
    // a directory over an empty merged one holding whiteouts: exchanged, old one removed
    d.unlink(&c, &p("/usr/lib/x")).unwrap();
    d.mkdir(&c, &p("/m"), 0o755).unwrap();
    write(&mut d, &c, "/m/z", b"z");
    d.rename(&c, &p("/m"), &p("/usr/lib")).unwrap();
    assert_eq!(names(&mut d, &c, "/usr/lib"), vec!["z"]);
    assert!(d.stat(&c, &p("/m")).is_err());
    assert!(!branch.join("m").exists());
    assert!(hostfs::list_names(&branch.join(ORPH)).unwrap().is_empty());
}

#[test]
fn too_many_layers_at_128() {
    let (_t, d, e) = one_layer_past_the_depth_limit::<AufsFlavor>();
    assert!(e.to_string().contains("aufs limit of 127"), "{e}");
    assert!(!d.backend().diff_dir(&id("l128")).exists());
    assert_eq!(d.semantics().max_depth, Some(127));
}

/// A stack of `depth` layers, each adding `/f<i>` (so `/` is spread over every branch)
/// and `/data/g<i>`; returns the top layer.
fn spread<D: LayerDriver>(d: &mut D, depth: usize) -> LayerId {
    let mut parent: Option<LayerId> = None;
    for i in 0..depth {
        let l = id(&format!("l{i}"));
        d.create_layer(&l, parent.as_ref()).unwrap();
        write(d, &l, &format!("/f{i}"), b"x");
        ops::mkdir_p(d, &l, &p("/data"), 0o755).unwrap();
        write(d, &l, &format!("/data/g{i}"), b"x");
        if i > 0 {
            // a deletion per layer: whiteouts are entries on both
            d.unlink(&l, &p(&format!("/data/g{}", i - 1))).unwrap();
        }
        d.commit(&l).unwrap();
        parent = Some(l);
    }
    parent.unwrap()
}

#[test]
fn readdir_over_64_branches_scans_more_than_overlay2() {
    let (_t, mut a) = fresh::<AufsFlavor>(&[]);
    let t2 = tempfile::tempdir().unwrap();
    let mut o = Layers::<Overlay2>::init(&t2.path().join("store"), Options::new()).unwrap();
    let ta = spread(&mut a, 64);
    let to = spread(&mut o, 64);
    for (dir, expected) in [("/", 65usize), ("/data", 1)] {
        a.meter_mut().reset();
        o.meter_mut().reset();
        let la = a.readdir(&ta, &p(dir)).unwrap();
        let lo = o.readdir(&to, &p(dir)).unwrap();
        assert_eq!(la, lo, "same view");
        assert_eq!(la.len(), expected);
        let (ca, co) = (a.meter().counts, o.meter().counts);
        // cold: one probe per branch on both
        assert_eq!(ca.probes, co.probes, "{dir}: aufs {ca:?} overlay2 {co:?}");
        if dir == "/" {
            // every branch root also holds aufs's .wh..wh.orph
            assert_eq!(ca.entries_scanned, co.entries_scanned + 64);
            assert!(ca.entries_scanned > co.entries_scanned);
        } else {
            // whiteouts are one entry on both formats
            assert_eq!(ca.entries_scanned, co.entries_scanned);
        }
        // warm: the lookup is cached on both, the merge is done again on both
        a.meter_mut().reset();
        o.meter_mut().reset();
        a.readdir(&ta, &p(dir)).unwrap();
        o.readdir(&to, &p(dir)).unwrap();
        let (wa, wo) = (a.meter().counts, o.meter().counts);
        assert_eq!((wa.probes, wo.probes), (0, 0));
        assert_eq!(wa.entries_scanned, ca.entries_scanned);
        assert_eq!(wo.entries_scanned, co.entries_scanned);
    }
}

#[test]
fn cold_lookups_grow_with_depth_warm_ones_hit_the_cache() {
    let mut cold = Vec::new();
    for depth in [1usize, 8, 32] {
        let (_t, mut d) = fresh::<AufsFlavor>(&[]);
        let top = spread(&mut d, depth);
        drop(d);
        let mut d = Layers::<Aufs>::open(&_t.path().join("store"), Access::Read).unwrap();
        assert_eq!(d.resolve(&top, &p("/f0")).unwrap(), Some(FileKind::File));
        cold.push(d.meter().counts.probes);
        d.meter_mut().reset();
        assert_eq!(d.resolve(&top, &p("/f0")).unwrap(), Some(FileKind::File));
        assert_eq!(d.meter().counts.probes, 0);
        assert_eq!(d.meter().counts.cache_hits, 1);
    }
    // the root, then /f0 in every branch down to the bottom one
    assert_eq!(cold, vec![2, 9, 33]);
}

#[test]
fn copy_up_copies_parents_and_file_once() {
    let (_t, mut d, b, c) = first_write_copies_up_once::<AufsFlavor>(&[]);
    // aufs has no metacopy: chmod copies the whole file
    assert_eq!(bytes_a_chmod_copies(&mut d, &c, "/usr/lib/x"), 3);
    assert_eq!(d.stat(&c, &p("/etc/passwd")).unwrap().layer, c);
    assert_eq!(d.stat(&c, &p("/etc/hosts")).unwrap().layer, b);
    // nothing is left staged
    assert!(hostfs::list_names(&d.backend().diff_dir(&c).join(ORPH))
        .unwrap()
        .is_empty());
}

#[test]
fn reopen_reads_everything_back_and_sweeps_leftovers() {
    let (t, mut d, b, c) = base_and_child::<AufsFlavor>(&[]);
    let root = t.path().join("store");
    ops::remove_all(&mut d, &c, &p("/d")).unwrap();
    let before = change_child(&mut d, &c, "/d");
    drop(d);
    // leftovers a crash could leave
    for dir in ["diff/ghost", "mnt/ghost", ".staging/ghost2"] {
        std::fs::create_dir_all(root.join("aufs").join(dir)).unwrap();
    }
    std::fs::write(root.join("aufs/layers/ghost"), b"base\n").unwrap();
    std::fs::write(root.join("aufs/diff/c/.wh..wh.orph/stage.9"), b"junk").unwrap();
    let mut d = Layers::<Aufs>::open(&root, Access::Write).unwrap();
    for left in [
        "diff/ghost",
        "mnt/ghost",
        "layers/ghost",
        ".staging/ghost2",
        "diff/c/.wh..wh.orph/stage.9",
    ] {
        assert!(!root.join("aufs").join(left).exists(), "{left} swept");
    }
    assert_changed_child(&mut d, &c, "/d", &before);
    assert!(d.stat(&c, &p("/etc/hosts")).is_err());
    assert_eq!(names(&mut d, &c, "/d"), vec!["link"]);
    // a layer named after a crash leftover is made cleanly
    let g = child(&mut d, "ghost", &b);
    assert_eq!(names(&mut d, &g, "/d"), vec!["f"]);
    drop(d);
    assert_read_only_reopen::<AufsFlavor>(&root, &c);
}

#[test]
fn symlinks_in_branches_are_never_followed() {
    let (_t, mut d, c, outside) = symlink_out_of_the_store::<AufsFlavor>();
    d.unlink(&c, &p("/esc")).unwrap();
    assert!(hostfs::list_names(&outside).unwrap().is_empty());
}
