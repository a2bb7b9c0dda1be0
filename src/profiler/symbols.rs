//! Names a profile's sampled addresses from the ELF symbol tables, read for one report and
//! dropped with it.
//!
//! Why not pprof's own symbolization (`backtrace`'s): it parses the DWARF of every object it
//! finds debug files for (libc's, where libc6-dbg is installed: 32 MiB while recording) and keeps
//! all of it for the life of the process. The release binary carries its symbol table and no
//! debug info (Cargo.toml), so function names are all that symbolization can give here anyway.
//! This reads only the symbol and string tables (through `object`'s read cache: a few MiB for
//! sluice), only of the objects the samples fall in, and frees them when the report is built.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::PathBuf;

use findshlibs::{Segment, SharedLibrary, TargetSharedLibrary};
use object::{Object, ObjectSymbol, SymbolKind};

/// One loaded object: its file, how far it was moved from its link addresses, and where its
/// code is in this process.
struct Module {
    path: PathBuf,
    bias: u64,
    code: Vec<Range<u64>>,
}

/// The report pprof would have built, named from the symbol tables. The signal handler's frame,
/// the profiler's frames above it and the signal trampoline below it are left out.
pub(super) fn resolve(
    unresolved: pprof::UnresolvedReport,
    post_process: impl Fn(&mut pprof::Frames),
) -> pprof::Report {
    // The address of the call, not the return address after it (as `backtrace` does).
    let lookup = |ip: usize| (ip as u64).saturating_sub(1);
    let mut addrs: Vec<u64> = unresolved
        .data
        .keys()
        .flat_map(|stack| stack.frames.iter().map(|f| lookup(f.ip() as usize)))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let names = name_addresses(&addrs);
    drop(addrs);

    let mut data: HashMap<pprof::Frames, isize> = HashMap::with_capacity(unresolved.data.len());
    for (stack, count) in unresolved.data {
        let mut frames = Vec::with_capacity(stack.frames.len());
        let mut skip_next = false;
        for frame in &stack.frames {
            if std::mem::take(&mut skip_next) {
                continue;
            }
            let addr = lookup(frame.ip() as usize);
            // A frame no symbol covers (a fully stripped binary) shows as its address.
            let name = match names.get(&addr) {
                Some(name) => name.clone(),
                None => format!("{addr:#x}").into_bytes(),
            };
            if name.as_slice() == b"perf_signal_handler" {
                skip_next = true;
                frames.clear();
                continue;
            }
            frames.push(vec![pprof::Symbol {
                name: Some(name),
                addr: None,
                lineno: None,
                filename: None,
            }]);
        }
        let len = stack.thread_name_length.min(stack.thread_name.len());
        let mut key = pprof::Frames {
            frames,
            thread_name: String::from_utf8_lossy(&stack.thread_name[..len]).into_owned(),
            thread_id: stack.thread_id,
            sample_timestamp: stack.sample_timestamp,
        };
        post_process(&mut key);
        *data.entry(key).or_insert(0) += count;
    }
    pprof::Report {
        data,
        timing: unresolved.timing,
    }
}

/// The raw (mangled) symbol name of each address in `sorted` that falls in a function.
fn name_addresses(sorted: &[u64]) -> HashMap<u64, Vec<u8>> {
    let mut names = HashMap::new();
    for module in modules() {
        let mine: Vec<u64> = sorted
            .iter()
            .copied()
            .filter(|a| module.code.iter().any(|r| r.contains(a)))
            .collect();
        if mine.is_empty() {
            continue;
        }
        if let Err(e) = name_in_module(&module, &mine, &mut names) {
            log::debug!(
                "CPU profiler: no symbols from {}: {e}",
                module.path.display()
            );
        }
    }
    names
}

/// The objects loaded in this process with a file behind them (not the vDSO).
fn modules() -> Vec<Module> {
    let mut out = Vec::new();
    TargetSharedLibrary::each(|lib| {
        let name = lib.name();
        // The main program has no name in the loader's list.
        let path = if name.is_empty() {
            PathBuf::from("/proc/self/exe")
        } else if name.to_string_lossy().contains("vdso") {
            return;
        } else {
            PathBuf::from(name)
        };
        let code = lib
            .segments()
            .filter(|s| s.is_code())
            .map(|s| {
                let start = s.actual_virtual_memory_address(lib).0 as u64;
                start..start + s.len() as u64
            })
            .collect();
        out.push(Module {
            path,
            bias: lib.virtual_memory_bias().0 as u64,
            code,
        });
    });
    out
}

/// Names `addrs` (sorted, all in `module`) from its `.symtab`, else its `.dynsym`, reading only
/// those tables from the file. One pass over the symbols, holding only the addresses' matches.
fn name_in_module(
    module: &Module,
    addrs: &[u64],
    names: &mut HashMap<u64, Vec<u8>>,
) -> Result<(), String> {
    let file = File::open(&module.path).map_err(|e| e.to_string())?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| e.to_string())?;
    let svmas: Vec<u64> = addrs.iter().map(|a| a.wrapping_sub(module.bias)).collect();
    let mut found = vec![None; svmas.len()];
    let mut any = false;
    for sym in elf.symbols() {
        any = true;
        match_function(&sym, &svmas, &mut found);
    }
    if !any {
        for sym in elf.dynamic_symbols() {
            match_function(&sym, &svmas, &mut found);
        }
    }
    for (addr, index) in addrs.iter().zip(found) {
        let name = index
            .and_then(|i| elf.symbol_by_index(i).ok())
            .and_then(|s| s.name_bytes().ok().map(<[u8]>::to_vec))
            .filter(|n| !n.is_empty());
        if let Some(name) = name {
            names.insert(*addr, name);
        }
    }
    Ok(())
}

/// Marks the addresses in `sym` (a sized function symbol) with its index.
fn match_function<'a, S: ObjectSymbol<'a>>(
    sym: &S,
    svmas: &[u64],
    found: &mut [Option<object::SymbolIndex>],
) {
    if sym.kind() != SymbolKind::Text || sym.size() == 0 {
        return;
    }
    let start = sym.address();
    let end = start.saturating_add(sym.size());
    let first = svmas.partition_point(|&a| a < start);
    for (a, slot) in svmas[first..].iter().zip(&mut found[first..]) {
        if *a >= end {
            break;
        }
        slot.get_or_insert(sym.index());
    }
}
