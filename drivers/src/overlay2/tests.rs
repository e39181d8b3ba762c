//! Unit tests of the overlay2 on-disk format, copy-up, metacopy, EXDEV, depth, cache and
//! reopen. The conformance suite (drivers/tests) checks the semantics against the model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::front::Layers;
use crate::store::Access;
use crate::union::testutil::*;
use layerlab_core::rules::Resolve;
use layerlab_core::{ops, ErrorKind, FileKind, LayerDriver};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

#[test]
fn layout_link_lower_and_short_links() {
    let (_t, mut d) = fresh::<OverlayFlavor>(&[]);
    let b = base_layer(&mut d);
    let c = child(&mut d, "c1", &b);
    d.commit(&c).unwrap();
    let e = child(&mut d, "c2", &c);
    let root = d.store().root().to_path_buf();
    let short = |l: &LayerId| layout::read_short(&root, l).unwrap();
    assert_eq!(short(&b).len(), 26);
    assert_eq!(
        short(&b),
        short_name(&b, 0),
        "short names derive from the id"
    );
    assert!(d.backend().layer_dir(&b).join("work").is_dir());
    assert!(d.backend().diff_dir(&b).is_dir());
    assert_eq!(
        layout::read_lower(&root, &b).unwrap(),
        None,
        "a base layer has no lower"
    );
    assert_eq!(
        layout::read_lower(&root, &e).unwrap().unwrap(),
        format!("l/{}:l/{}", short(&c), short(&b))
    );
    let link = root.join("overlay2/l").join(short(&e));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        PathBuf::from(format!("../{}/diff", e.dir_name()))
    );
    assert_eq!(
        std::fs::canonicalize(&link).unwrap(),
        std::fs::canonicalize(d.backend().diff_dir(&e)).unwrap()
    );
    // a layer named `l` cannot collide with the short-link directory
    let l = id("l");
    d.create_layer(&l, None).unwrap();
    write(&mut d, &l, "/x", b"x");
    assert_eq!(ops::read_all(&mut d, &l, &p("/x")).unwrap(), b"x");
    assert!(root.join("overlay2/l").join(short(&b)).exists());
}

#[test]
fn whiteout_is_a_char_device_0_0_and_opaque_dir_has_the_xattr() {
    let (_t, d, _) = whiteout_then_opaque_dir::<OverlayFlavor>(
        |branch| {
            let md = std::fs::symlink_metadata(branch.join("etc/hosts")).unwrap();
            assert!(md.file_type().is_char_device());
            assert_eq!(md.rdev(), 0);
        },
        |branch| {
            let md = std::fs::symlink_metadata(branch.join("d")).unwrap();
            assert!(md.file_type().is_char_device(), "a whiteout in its place");
        },
        |branch| {
            let dir = branch.join("d");
            assert!(dir.is_dir());
            assert_eq!(
                hostfs::get_xattr(&dir, "trusted.overlay.opaque")
                    .unwrap()
                    .as_deref(),
                Some(&b"y"[..])
            );
        },
    );
    assert_eq!(
        d.backend().format().opaque_xattr,
        "trusted.overlay.opaque",
        "root uses trusted.*"
    );
}

#[test]
fn userxattr_store_uses_user_namespace() {
    let (_t, mut d, _, c) = base_and_child::<OverlayFlavor>(&[("userxattr", "on")]);
    assert_eq!(d.store().options()["userxattr"], "on");
    d.unlink(&c, &p("/d/f")).unwrap();
    d.rmdir(&c, &p("/d")).unwrap();
    d.mkdir(&c, &p("/d"), 0o755).unwrap();
    let dir = d.backend().diff_dir(&c).join("d");
    assert!(hostfs::get_xattr(&dir, "user.overlay.opaque")
        .unwrap()
        .is_some());
    assert!(hostfs::get_xattr(&dir, "trusted.overlay.opaque")
        .unwrap()
        .is_none());
    assert!(d.readdir(&c, &p("/d")).unwrap().is_empty());
    let facts = d.status().unwrap().facts;
    assert!(facts
        .iter()
        .any(|(k, v)| k == "opaque xattr" && v.contains("user.overlay.opaque")));
}

#[test]
fn copy_up_copies_parents_and_file_once() {
    let (_t, mut d, b, c) = first_write_copies_up_once::<OverlayFlavor>(&[]);
    d.chmod(&b, &p("/etc"), 0o700).unwrap_err(); // committed
                                                 // provenance: the copied-up path and its parents are the child's, siblings are not
    assert_eq!(d.stat(&c, &p("/etc/passwd")).unwrap().layer, c);
    assert_eq!(d.stat(&c, &p("/etc")).unwrap().layer, c);
    assert_eq!(d.stat(&c, &p("/etc/hosts")).unwrap().layer, b);
    assert_eq!(d.stat(&c, &p("/")).unwrap().layer, c);
    assert_eq!(d.stat(&c, &p("/usr")).unwrap().layer, b);
    let u = d.usage(&c).unwrap();
    assert_eq!((u.bytes, u.inodes), (1235, 2));
}

#[test]
fn metacopy_chmod_copies_no_data_then_write_does() {
    let (_t, mut d, b, c) = base_and_child::<OverlayFlavor>(&[("metacopy", "on")]);
    assert_eq!(bytes_a_chmod_copies(&mut d, &c, "/etc/passwd"), 0);
    let up = d.backend().diff_dir(&c).join("etc/passwd");
    let md = std::fs::symlink_metadata(&up).unwrap();
    assert_eq!(md.size(), 1234);
    assert_eq!(md.blocks(), 0, "a metacopy file is sparse");
    assert!(hostfs::get_xattr(&up, d.backend().format().metacopy_xattr)
        .unwrap()
        .is_some());
    let st = d.stat(&c, &p("/etc/passwd")).unwrap();
    assert_eq!(
        (st.mode, st.size, st.layer.clone()),
        (0o600, 1234, c.clone())
    );
    assert_eq!(
        ops::read_all(&mut d, &c, &p("/etc/passwd")).unwrap(),
        vec![b'p'; 1234]
    );
    assert_eq!(d.usage(&c).unwrap().details["metacopy_files"], 1);
    d.chown(&c, &p("/etc/passwd"), 7, 8).unwrap();
    assert_eq!(d.meter().counts.bytes_copied, 0);
    // the first data change copies the data and drops the marker
    d.write(&c, &p("/etc/passwd"), 0, b"X").unwrap();
    assert_eq!(d.meter().counts.bytes_copied, 1234);
    assert!(hostfs::get_xattr(&up, d.backend().format().metacopy_xattr)
        .unwrap()
        .is_none());
    let st = d.stat(&c, &p("/etc/passwd")).unwrap();
    assert_eq!((st.mode, st.uid, st.gid, st.size), (0o600, 7, 8, 1234));
    let data = ops::read_all(&mut d, &c, &p("/etc/passwd")).unwrap();
    assert_eq!(data[0], b'X');
    assert_eq!(&data[1..], &[b'p'; 1233][..]);
    // metacopy over metacopy: the data is found two layers down
    let c2 = id("c2");
    d.create_layer(&id("m"), Some(&b)).unwrap();
    d.chmod(&id("m"), &p("/usr/lib/x"), 0o711).unwrap();
    d.commit(&id("m")).unwrap();
    d.create_layer(&c2, Some(&id("m"))).unwrap();
    d.chmod(&c2, &p("/usr/lib/x"), 0o700).unwrap();
    assert_eq!(
        ops::read_all(&mut d, &c2, &p("/usr/lib/x")).unwrap(),
        b"lib"
    );
    d.append(&c2, &p("/usr/lib/x"), b"!").unwrap();
    assert_eq!(
        ops::read_all(&mut d, &c2, &p("/usr/lib/x")).unwrap(),
        b"lib!"
    );
    assert_eq!(d.stat(&c2, &p("/usr/lib/x")).unwrap().mode, 0o700);
}

#[test]
fn metacopy_off_chmod_copies_data() {
    let (_t, mut d, _, c) = base_and_child::<OverlayFlavor>(&[]);
    assert_eq!(bytes_a_chmod_copies(&mut d, &c, "/etc/passwd"), 1234);
    assert!(Layers::<Overlay2>::init(
        &_t.path().join("other"),
        Options::from([("metacopy".into(), "maybe".into())])
    )
    .is_err());
}

#[test]
fn renaming_a_lower_directory_is_exdev() {
    let (_t, mut d, b, c) = base_and_child::<OverlayFlavor>(&[]);
    // lower-only
    let e = d.rename(&c, &p("/usr"), &p("/opt")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CrossDevice, "{e}");
    // merged (copied up because of a change inside)
    write(&mut d, &c, "/etc/new", b"n");
    assert_eq!(
        d.rename(&c, &p("/etc"), &p("/etc2")).unwrap_err().kind(),
        ErrorKind::CrossDevice
    );
    // as in the kernel, EXDEV comes before the emptiness of the directory replaced; the
    // VFS's own checks (kinds) come first
    assert_eq!(
        d.rename(&c, &p("/usr"), &p("/etc")).unwrap_err().kind(),
        ErrorKind::CrossDevice
    );
    assert_eq!(
        d.rename(&c, &p("/usr"), &p("/etc/new")).unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    // upper-only and opaque directories move
    d.mkdir(&c, &p("/new"), 0o755).unwrap();
    write(&mut d, &c, "/new/f", b"f");
    d.rename(&c, &p("/new"), &p("/moved")).unwrap();
    assert_eq!(ops::read_all(&mut d, &c, &p("/moved/f")).unwrap(), b"f");
    d.unlink(&c, &p("/d/f")).unwrap();
    d.rmdir(&c, &p("/d")).unwrap();
    d.mkdir(&c, &p("/d"), 0o755).unwrap();
    d.rename(&c, &p("/d"), &p("/d2")).unwrap();
    // the old name keeps hiding the lower /d
    assert_eq!(
        d.stat(&c, &p("/d")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(d.readdir(&c, &p("/d2")).unwrap().is_empty());
    // nothing changed in the failed renames
    assert_eq!(d.stat(&c, &p("/usr")).unwrap().layer, b);
}

#[test]
fn directory_moved_over_a_lower_path_becomes_opaque() {
    let (_t, mut d) = fresh::<OverlayFlavor>(&[]);
    let b = id("base");
    d.create_layer(&b, None).unwrap();
    ops::mkdir_p(&mut d, &b, &p("/t/sub"), 0o755).unwrap();
    write(&mut d, &b, "/t/sub/f", b"x");
    d.commit(&b).unwrap();
    let c = child(&mut d, "c", &b);
    d.unlink(&c, &p("/t/sub/f")).unwrap();
    // /t/sub is now an empty merged dir holding a whiteout
    d.mkdir(&c, &p("/src"), 0o711).unwrap();
    d.rename(&c, &p("/src"), &p("/t/sub")).unwrap();
    let up = d.backend().diff_dir(&c).join("t/sub");
    assert!(d.backend().format().is_opaque(&up).unwrap());
    assert!(d.readdir(&c, &p("/t/sub")).unwrap().is_empty());
    assert_eq!(d.stat(&c, &p("/t/sub")).unwrap().mode, 0o711);
    assert_eq!(
        d.stat(&c, &p("/src")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // changeset: /t/sub replaced
    let ch = d.changes(&c).unwrap();
    assert!(ch.iter().any(|x| x.path == p("/t/sub")), "{ch:?}");
}

#[test]
fn rmdir_of_a_merged_directory_leaves_one_whiteout() {
    let (_t, mut d, _, c) = base_and_child::<OverlayFlavor>(&[]);
    d.unlink(&c, &p("/d/f")).unwrap();
    d.rmdir(&c, &p("/d")).unwrap();
    let wh = d.backend().diff_dir(&c).join("d");
    assert!(hostfs::is_whiteout(
        &std::fs::symlink_metadata(&wh).unwrap()
    ));
    assert_eq!(
        d.stat(&c, &p("/d")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // an upper-only file just goes
    write(&mut d, &c, "/only", b"o");
    d.unlink(&c, &p("/only")).unwrap();
    assert!(hostfs::lstat(&d.backend().diff_dir(&c).join("only"))
        .unwrap()
        .is_none());
    assert!(hostfs::list_names(&d.backend().layer_dir(&c).join("work"))
        .unwrap()
        .is_empty());
}

#[test]
fn too_many_layers_at_129() {
    let (_t, d, _) = one_layer_past_the_depth_limit::<OverlayFlavor>();
    assert_eq!(d.semantics().max_depth, Some(128));
}

#[test]
fn warm_lookups_hit_the_cache_cold_ones_probe_every_layer() {
    let (t, mut d) = fresh::<OverlayFlavor>(&[]);
    let b = id("b");
    d.create_layer(&b, None).unwrap();
    write(&mut d, &b, "/f", b"bottom");
    d.commit(&b).unwrap();
    let mut parent = b.clone();
    for i in 2..=8 {
        let l = id(&format!("l{i}"));
        d.create_layer(&l, Some(&parent)).unwrap();
        d.commit(&l).unwrap();
        parent = l;
    }
    let top = parent;
    // the branches were made by this driver: the host has them cached, every probe is
    // warm
    d.meter_mut().reset();
    assert_eq!(d.resolve(&top, &p("/f")).unwrap(), Some(FileKind::File));
    let fresh = d.meter().counts;
    assert_eq!((fresh.probes, fresh.warm_probes), (0, 1 + 8));
    // a store opened anew starts cold
    drop(d);
    let mut d = Layers::<Overlay2>::open(&t.path().join("store"), Access::Write).unwrap();
    assert_eq!(d.resolve(&top, &p("/f")).unwrap(), Some(FileKind::File));
    let cold = d.meter().counts;
    // the root (1), then /f in each of the 8 layers
    assert_eq!(cold.probes, 1 + 8, "one probe per layer");
    // the view's root entered the top layer; each of the 7 below is entered once
    assert_eq!(cold.layer_opens, 7);
    assert_eq!(cold.cache_hits, 0);
    d.meter_mut().reset();
    assert_eq!(ops::read_all(&mut d, &top, &p("/f")).unwrap(), b"bottom");
    let warm = d.meter().counts;
    assert_eq!(warm.probes, 0);
    assert_eq!(warm.layer_opens, 0);
    assert!(warm.cache_hits >= 1);
    assert_eq!(
        warm.extents_read, 1,
        "the first read of the data misses the page cache"
    );
    d.meter_mut().reset();
    assert_eq!(ops::read_all(&mut d, &top, &p("/f")).unwrap(), b"bottom");
    assert_eq!(d.meter().counts.extents_read, 0, "then it is cached");
    // a missing name probes every layer once (the root directories are cached by now),
    // then is cached too
    d.meter_mut().reset();
    assert!(d.stat(&top, &p("/missing")).is_err());
    assert_eq!(d.meter().counts.probes, 0);
    assert_eq!(d.meter().counts.warm_probes, 8);
    d.meter_mut().reset();
    assert!(d.stat(&top, &p("/missing")).is_err());
    assert_eq!(d.meter().counts.probes, 0);
    assert_eq!(d.meter().counts.cache_hits, 1);
}

#[test]
fn a_read_through_a_stacked_view_opens_the_backing_file_a_base_layer_read_does_not() {
    let (_t, mut d, b, c) = base_and_child::<OverlayFlavor>(&[]);
    for (layer, backing) in [(&b, 0), (&c, 1)] {
        d.meter_mut().reset();
        assert_eq!(d.read(layer, &p("/usr/lib/x"), 0, 3).unwrap(), b"lib");
        let counts = d.meter().counts;
        assert_eq!(counts.reads, 1);
        assert_eq!(counts.backing_opens, backing, "read in {layer}");
    }
}

#[test]
fn cache_is_invalidated_by_changes_of_the_layer() {
    let (_t, mut d, b, c) = base_and_child::<OverlayFlavor>(&[]);
    assert_eq!(d.stat(&c, &p("/etc/hosts")).unwrap().layer, b);
    d.unlink(&c, &p("/etc/hosts")).unwrap();
    assert!(d.stat(&c, &p("/etc/hosts")).is_err());
    write(&mut d, &c, "/etc/hosts", b"new");
    assert_eq!(ops::read_all(&mut d, &c, &p("/etc/hosts")).unwrap(), b"new");
    d.mkdir(&c, &p("/n"), 0o755).unwrap();
    write(&mut d, &c, "/n/a", b"a");
    d.rename(&c, &p("/n"), &p("/m")).unwrap();
    assert!(d.stat(&c, &p("/n/a")).is_err());
    assert_eq!(ops::read_all(&mut d, &c, &p("/m/a")).unwrap(), b"a");
    // the base's view is untouched
    assert_eq!(
        ops::read_all(&mut d, &b, &p("/etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    // a removed then recreated layer starts with a clean cache
    d.remove_layer(&c).unwrap();
    let c = child(&mut d, "c", &b);
    assert_eq!(d.stat(&c, &p("/etc/hosts")).unwrap().layer, b);
    assert!(d.stat(&c, &p("/m")).is_err());
}

#[test]
fn symlinks_in_layers_are_never_followed() {
    let (_t, mut d, c, outside) = symlink_out_of_the_store::<OverlayFlavor>();
    if hostfs::privileged() {
        // (an unprivileged store can keep no owner on a symlink: see hostfs)
        d.chown(&c, &p("/esc"), 3, 4).unwrap();
    } else {
        d.chmod(&c, &p("/"), 0o755).unwrap();
    }
    assert_eq!(d.stat(&c, &p("/esc")).unwrap().kind, FileKind::Symlink);
    assert!(hostfs::list_names(&outside).unwrap().is_empty());
}

#[test]
fn reopen_reads_everything_back_and_sweeps_leftovers() {
    let (t, mut d, _, c) = base_and_child::<OverlayFlavor>(&[("metacopy", "on")]);
    let root = t.path().join("store");
    let before = change_child(&mut d, &c, "/new");
    drop(d);
    // leftovers a crash could leave
    std::fs::create_dir_all(root.join("overlay2/ghost/diff")).unwrap();
    std::fs::write(root.join("overlay2/c/work/stage.99"), b"junk").unwrap();
    std::os::unix::fs::symlink("../ghost/diff", root.join("overlay2/l/GHOST")).unwrap();
    let mut d = Layers::<Overlay2>::open(&root, Access::Write).unwrap();
    assert!(!root.join("overlay2/ghost").exists());
    assert!(!root.join("overlay2/l/GHOST").exists());
    assert!(!root.join("overlay2/c/work/stage.99").exists());
    assert_changed_child(&mut d, &c, "/new", &before);
    assert_eq!(ops::read_all(&mut d, &c, &p("/usr/lib/x")).unwrap(), b"lib");
    assert_eq!(d.store().options()["metacopy"], "on");
    drop(d);
    assert_read_only_reopen::<OverlayFlavor>(&root, &c);
}

#[test]
fn changes_follow_the_shared_definition() {
    let (_t, mut d, _, c) = base_and_child::<OverlayFlavor>(&[]);
    d.unlink(&c, &p("/etc/hosts")).unwrap();
    write(&mut d, &c, "/etc/passwd", &[b'p'; 1234]); // same content: no change
    d.chmod(&c, &p("/usr/lib/x"), 0o600).unwrap();
    write(&mut d, &c, "/new", b"n");
    let got: Vec<(String, layerlab_core::ChangeKind)> = d
        .changes(&c)
        .unwrap()
        .into_iter()
        .map(|x| (x.path.to_string(), x.kind))
        .collect();
    use layerlab_core::ChangeKind::*;
    assert_eq!(
        got,
        vec![
            ("/etc".to_string(), Modified),
            ("/etc/hosts".to_string(), Deleted),
            ("/new".to_string(), Added),
            ("/usr/lib/x".to_string(), Modified),
        ]
    );
}
