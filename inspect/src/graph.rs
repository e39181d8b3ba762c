//! Pictures of the store, as the course draws them: the layer tree (which images and
//! containers share which layers, each with its size) as text, mermaid or Graphviz; and
//! for one image its stack, from the base layer through the container layers to the
//! merged view.

use crate::df::{ancestry, layer_sizes};
use crate::error::Result;
use crate::units::{human_size, short_id};
use layerlab_core::{LayerDriver, LayerState};
use layerlab_oci::ImageRecord;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One layer of the picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The layer id.
    pub id: String,
    /// Its parent.
    pub parent: Option<String>,
    /// The file content it carries itself.
    pub size: u64,
    /// True for an active (container) layer.
    pub container: bool,
    /// The images whose top layer it is.
    pub images: Vec<String>,
}

/// The layers drawn, parents before children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// The layers.
    pub nodes: Vec<Node>,
}

/// The layer tree of the store; with `only`, the layers of those images and every layer
/// above their top layers.
pub fn graph<D: LayerDriver + ?Sized>(
    d: &mut D,
    images: &[ImageRecord],
    only: &[&ImageRecord],
) -> Result<Graph> {
    let layers = layer_sizes(d, images)?;
    let mut tops: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in images {
        tops.entry(i.top_layer.as_str())
            .or_default()
            .push(i.name.clone());
    }
    let keep = |id: &str| {
        only.is_empty()
            || only.iter().any(|i| {
                i.layers.iter().any(|l| l.chain_id == id)
                    || ancestry(&layers, id).contains(&i.top_layer)
            })
    };
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_depth: Vec<(usize, &String)> = layers
        .iter()
        .map(|(id, (info, _))| (info.depth, id))
        .collect();
    by_depth.sort();
    for (_, id) in by_depth {
        if !keep(id) {
            continue;
        }
        let Some((info, size)) = layers.get(id) else {
            continue;
        };
        nodes.push(Node {
            id: id.clone(),
            parent: info.parent.as_ref().map(ToString::to_string),
            size: *size,
            container: info.state == LayerState::Active,
            images: tops.get(id.as_str()).cloned().unwrap_or_default(),
        });
    }
    Ok(Graph { nodes })
}

fn label(n: &Node) -> String {
    let mut s = format!("{}  {}", short_id(&n.id), human_size(n.size));
    if n.container {
        s.push_str("  container (read-write)");
    }
    for i in &n.images {
        let _ = write!(s, "  [{i}]");
    }
    s
}

impl Graph {
    fn children(&self, parent: Option<&str>) -> Vec<&Node> {
        let present = |p: &str| self.nodes.iter().any(|n| n.id == p);
        self.nodes
            .iter()
            .filter(|n| match (n.parent.as_deref(), parent) {
                (Some(p), Some(want)) => p == want,
                // a root of the picture: no parent, or a parent not drawn
                (Some(p), None) => !present(p),
                (None, None) => true,
                (None, Some(_)) => false,
            })
            .collect()
    }

    fn text_into(&self, n: &Node, prefix: &str, last: bool, root: bool, out: &mut String) {
        let (branch, more) = match (root, last) {
            (true, _) => ("", ""),
            (false, true) => ("└── ", "    "),
            (false, false) => ("├── ", "│   "),
        };
        let _ = writeln!(out, "{prefix}{branch}{}", label(n));
        let next = format!("{prefix}{more}");
        let kids = self.children(Some(&n.id));
        for (k, c) in kids.iter().enumerate() {
            self.text_into(c, &next, k + 1 == kids.len(), false, out);
        }
    }

    /// The tree as text: each layer under its parent, with its size, the images whose
    /// top layer it is, and whether it is a container layer.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in self.children(None) {
            self.text_into(r, "", true, true, &mut out);
        }
        out
    }

    /// The tree as a mermaid flowchart (base layers at the bottom).
    pub fn mermaid(&self) -> String {
        self.draw(Syntax::Mermaid)
    }

    /// The tree as a Graphviz digraph (base layers at the bottom).
    pub fn dot(&self) -> String {
        self.draw(Syntax::Dot)
    }

    fn draw(&self, syntax: Syntax) -> String {
        let idx: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let mut out = syntax.header().to_string();
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&syntax.node(i, n));
            if let Some(p) = n.parent.as_deref().and_then(|p| idx.get(p)) {
                out.push_str(&syntax.edge(i, *p));
            }
            for (k, img) in n.images.iter().enumerate() {
                out.push_str(&syntax.image(i, k, img));
            }
        }
        out.push_str(syntax.footer());
        out
    }
}

/// The diagram languages `graph` writes: layers `L<i>`, images `I<i>_<k>`.
#[derive(Debug, Clone, Copy)]
enum Syntax {
    Mermaid,
    Dot,
}

impl Syntax {
    fn header(self) -> &'static str {
        match self {
            Syntax::Mermaid => "flowchart BT\n",
            Syntax::Dot => "digraph layers {\n  rankdir=BT;\n  node [shape=box];\n",
        }
    }

    fn footer(self) -> &'static str {
        match self {
            Syntax::Mermaid => "",
            Syntax::Dot => "}\n",
        }
    }

    fn node(self, i: usize, n: &Node) -> String {
        let (id, size) = (short_id(&n.id), human_size(n.size));
        match (self, n.container) {
            (Syntax::Mermaid, false) => format!("  L{i}[\"{id}<br/>{size}\"]\n"),
            (Syntax::Mermaid, true) => format!("  L{i}[\"{id}<br/>{size}<br/>container\"]\n"),
            (Syntax::Dot, false) => format!("  L{i} [label=\"{id}\\n{size}\"];\n"),
            (Syntax::Dot, true) => format!("  L{i} [label=\"{id}\\n{size}\", style=dashed];\n"),
        }
    }

    fn edge(self, child: usize, parent: usize) -> String {
        match self {
            Syntax::Mermaid => format!("  L{child} --> L{parent}\n"),
            Syntax::Dot => format!("  L{child} -> L{parent};\n"),
        }
    }

    fn image(self, i: usize, k: usize, name: &str) -> String {
        let name = name.replace('"', "'");
        match self {
            Syntax::Mermaid => format!("  I{i}_{k}([\"{name}\"]) -.- L{i}\n"),
            Syntax::Dot => format!(
                "  I{i}_{k} [label=\"{name}\", shape=ellipse];\n  I{i}_{k} -> L{i} [style=dotted];\n"
            ),
        }
    }
}

/// One image's stack as the course's first diagram draws it: the merged view on top,
/// the container layers (read-write) on the image's top layer, then the image's layers
/// (read-only) down to the base. `steps` are the history steps of the layers, bottom
/// first.
pub fn stack_text(g: &Graph, image: &ImageRecord, steps: &[String]) -> String {
    let line = |id: &str, role: &str, access: &str, size: &str, what: &str| {
        let l = format!("{id:<14}{role:<16}{access:<12}{size:>8}  {what}");
        format!("{}\n", l.trim_end())
    };
    let mut out = String::new();
    let containers: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| n.container && n.parent.as_deref() == Some(image.top_layer.as_str()))
        .collect();
    let seen_by = match containers.as_slice() {
        [] => "no container yet".to_string(),
        [one] => format!("what container layer {} sees", one.id),
        many => format!("what each of {} container layers sees", many.len()),
    };
    let _ = writeln!(out, "{:<14}{}: {seen_by}", "merged view", image.name);
    for c in &containers {
        out.push_str(&line(
            &short_id(&c.id),
            "container",
            "read-write",
            &human_size(c.size),
            "",
        ));
    }
    for (i, l) in image.layers.iter().enumerate().rev() {
        let role = if i == 0 {
            format!("layer {i} (base)")
        } else {
            format!("layer {i}")
        };
        let step = steps.get(i).map(String::as_str).unwrap_or_default();
        out.push_str(&line(
            &short_id(&l.chain_id),
            &role,
            "read-only",
            &human_size(l.size),
            step,
        ));
    }
    out
}
