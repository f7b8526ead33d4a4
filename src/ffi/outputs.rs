//! Exports that write files for other readers (logic in `crate::textfile`):
//! `.prom.write[path]` for node_exporter's textfile collector, and the file_sd target
//! file `.prom.init`'s `fileSd` key registers and `.prom.stop` removes.

use super::exports::guard;
use super::k;
use crate::error::{Error, Result};
use crate::registry::global;
use crate::textfile;
use super::qapi::K;

/// A path: symbol (`` `:/dir/x.prom ``, the colon dropped later) or string.
fn path<'a>(x: K) -> Result<&'a str> {
    match k::ty(x) {
        -11 | k::KC => k::text(x, Error::PathType),
        _ => Err(Error::PathType),
    }
}

/// `.prom.write[path]` -> `::`: the text 0.0.4 exposition, written atomically.
#[no_mangle]
pub extern "C" fn qprom_write(p: K) -> K {
    guard(|| {
        textfile::write_textfile(global(), path(p)?)?;
        Ok(k::generic_null())
    })
}

/// Labels for file_sd: a dictionary of symbol keys to symbols or strings; `::` or an
/// empty dictionary for none.
fn sd_labels<'a>(x: K) -> Result<Vec<(&'a str, &'a str)>> {
    if k::ty(x) == k::NULL {
        return Ok(Vec::new());
    }
    if k::ty(x) == k::XD && k::len(k::kids(x)[0]) == 0 {
        return Ok(Vec::new());
    }
    let items = k::dict_items(x).map_err(|e| if e == Error::DefinitionType { Error::SdLabels } else { e })?;
    items.iter().map(|(n, v)| Ok((*n, v.text(Error::SdLabels)?))).collect()
}

/// `.prom.i.sdregister[dir;target;labels]` -> the file written (a string):
/// `<dir>/qprom-<host>-<port>.json` with one target group `target` ("host:port") and
/// `labels`. A file registered before under another name is removed.
#[no_mangle]
pub extern "C" fn qprom_sd_register(dir: K, target: K, labels: K) -> K {
    guard(|| {
        let dir = path(dir)?;
        let target = k::text(target, Error::SdTarget)?;
        let labels = sd_labels(labels)?;
        let p = textfile::sd_register(dir, target, &labels)?;
        Ok(k::string(p.as_os_str().as_encoded_bytes()))
    })
}

/// `.prom.i.sdremove[::]` -> boolean: 1b when a registered file was removed.
#[no_mangle]
pub extern "C" fn qprom_sd_remove(_unused: K) -> K {
    guard(|| {
        let removed = textfile::sd_remove();
        // SAFETY: kb is a plain constructor; the new atom is owned by q.
        Ok(unsafe { super::qapi::native::kb(removed as i32) })
    })
}
