//! What a build will do before it starts: the global build arguments, the target stage,
//! the stages it needs (its base and `COPY --from` stages, and theirs: the others are
//! skipped, as BuildKit skips them), and the check that every FROM and `COPY --from`
//! names `scratch`, an earlier stage or an image of the store.

use crate::builder::Options;
use crate::error::{BuildError, Result};
use crate::parse::{Containerfile, Kind};
use crate::words;
use layerlab_oci::ImageRecord;
use std::collections::BTreeMap;

/// An image of the store by the name `images` lists, by id, or `NAME` as `NAME:latest`.
pub(crate) fn find_image(
    root: &std::path::Path,
    images: &[ImageRecord],
    name: &str,
) -> Option<ImageRecord> {
    layerlab_inspect::find_image(root, images, name)
        .ok()
        .or_else(|| {
            let latest = format!("{name}:latest");
            images.iter().find(|i| i.name == latest).cloned()
        })
}

/// Checks, before anything is built, that every FROM and `COPY --from` of the stages to
/// build names `scratch`, an earlier stage or an image of the store.
pub(crate) fn check_refs(
    cf: &Containerfile,
    needed: &[usize],
    globals: &BTreeMap<String, String>,
    root: &std::path::Path,
    images: &[ImageRecord],
) -> Result<()> {
    for &i in needed {
        let s = &cf.stages[i];
        let base = expand_global(cf, globals, &s.base, s.line)?;
        if !base.eq_ignore_ascii_case("scratch")
            && stage_ref(cf, &base, i).is_none()
            && find_image(root, images, &base).is_none()
        {
            return Err(BuildError::Parse {
                file: cf.file.clone(),
                line: s.line,
                instruction: "FROM".into(),
                reason: format!("'{base}' is neither an earlier stage nor an image in the store (see `layerlab images`)"),
            });
        }
        for ins in &s.instrs {
            if let Kind::Copy { from: Some(f), .. } = &ins.kind {
                let f = expand_global(cf, globals, f, ins.line)?;
                if stage_ref(cf, &f, i).is_none() && find_image(root, images, &f).is_none() {
                    return Err(BuildError::Parse {
                        file: cf.file.clone(),
                        line: ins.line,
                        instruction: ins.keyword.clone(),
                        reason: format!("--from={f}: no earlier stage or image of that name"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Build arguments given but declared by no ARG of the file (podman warns of them).
pub(crate) fn unused_args(cf: &Containerfile, opts: &Options) -> Vec<String> {
    let declared = |name: &str| {
        cf.global_args.iter().any(|(k, _)| k == name)
            || cf
                .stages
                .iter()
                .flat_map(|s| &s.instrs)
                .any(|ins| match &ins.kind {
                    Kind::Arg(a) => a.iter().any(|(k, _)| k == name),
                    _ => false,
                })
    };
    let mut out: Vec<String> = opts
        .build_args
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !declared(k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The global ARGs (before the first FROM), with `--build-arg` applied.
pub(crate) fn global_args(cf: &Containerfile, opts: &Options) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, default) in &cf.global_args {
        let value = match opts.build_args.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => v.clone(),
            None => match default {
                Some(d) => {
                    let look = |n: &str| out.get(n).cloned();
                    words::expand(d, &look, cf.escape).map_err(|reason| BuildError::Parse {
                        file: cf.file.clone(),
                        line: 1,
                        instruction: "ARG".into(),
                        reason,
                    })?
                }
                None => String::new(),
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

pub(crate) fn target_stage(cf: &Containerfile, target: Option<&str>) -> Result<usize> {
    match target {
        None => Ok(cf.stages.len() - 1),
        Some(t) => cf
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| BuildError::Parse {
                file: cf.file.clone(),
                line: 1,
                instruction: "--target".into(),
                reason: format!("no stage is named '{t}'"),
            }),
    }
}

/// The stage a name refers to, among those before `before`.
pub(crate) fn stage_ref(cf: &Containerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    cf.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(&lower))
        .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
}

pub(crate) fn expand_global(
    cf: &Containerfile,
    globals: &BTreeMap<String, String>,
    text: &str,
    line: usize,
) -> Result<String> {
    let look = |n: &str| globals.get(n).cloned();
    words::expand(text, &look, cf.escape).map_err(|reason| BuildError::Parse {
        file: cf.file.clone(),
        line,
        instruction: "FROM".into(),
        reason,
    })
}

/// The stages the target needs, in file order.
pub(crate) fn needed_stages(
    cf: &Containerfile,
    target: usize,
    globals: &BTreeMap<String, String>,
) -> Result<Vec<usize>> {
    let mut need = vec![false; cf.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        let s = &cf.stages[i];
        let base = expand_global(cf, globals, &s.base, s.line)?;
        if let Some(j) = stage_ref(cf, &base, i) {
            todo.push(j);
        }
        for ins in &s.instrs {
            if let Kind::Copy { from: Some(f), .. } = &ins.kind {
                let f = expand_global(cf, globals, f, ins.line)?;
                if let Some(j) = stage_ref(cf, &f, i) {
                    todo.push(j);
                }
            }
        }
    }
    Ok((0..cf.stages.len()).filter(|&i| need[i]).collect())
}
