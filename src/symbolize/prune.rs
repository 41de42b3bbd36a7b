//! Compile units that cover none of the addresses to resolve are emptied
//! before addr2line sees them.
//!
//! addr2line parses every unit's abbreviation table and root DIE up front.
//! In a distro debug file (libc6-dbg: 4,126 units) that is most of the cost
//! of naming the three or four libc frames a profile holds. `.debug_aranges`
//! says which units cover which addresses, so every other compile unit is
//! rewritten in place as an empty unit of the same length: offsets in the
//! section do not move, and its arange sets are dropped so no address leads
//! to it. An address no arange set covers (a PLT stub, `_start` from a crt
//! file built without `-g`) can only be in a unit that has no arange set,
//! and those are all kept. Nothing is emptied when a kept unit's
//! abbreviations use `DW_FORM_ref_addr` (a reference that may point into
//! another unit of the file), nor in files without `.debug_aranges`
//! (clang's and rustc's default).

use std::borrow::Cow;
use std::collections::HashSet;

use gimli::{DebugAranges, DebugInfo, EndianSlice, Format, Reader, RunTimeEndian, UnitType};

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;

/// How many compile units were emptied, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pruned {
    pub emptied: usize,
    pub units: usize,
}

/// The three sections pruning reads and rewrites, as loaded.
pub(super) struct UnitSections<'data> {
    pub info: Cow<'data, [u8]>,
    pub abbrev: Cow<'data, [u8]>,
    pub aranges: Cow<'data, [u8]>,
}

/// Empties the compile units that no address of `svmas` (sorted) falls
/// in; returns `None`, leaving `sections` as they were, when that cannot be
/// done safely or would empty nothing. Inflated sections are rewritten in
/// place, mapped ones copied.
pub(super) fn keep_units_covering(
    sections: &mut UnitSections<'_>,
    endian: RunTimeEndian,
    svmas: &[u64],
) -> Option<Pruned> {
    let plan = plan(
        Slice::new(&sections.info, endian),
        Slice::new(&sections.abbrev, endian),
        Slice::new(&sections.aranges, endian),
        svmas,
    )?;
    let pruned = Pruned {
        emptied: plan.emptied.len(),
        units: plan.units,
    };
    rewrite(sections, endian, plan)?;
    Some(pruned)
}

/// A unit to empty: where it starts, how its header is laid out.
struct EmptyUnit {
    offset: usize,
    format: Format,
    version: u16,
    header_size: usize,
    end: usize,
}

impl EmptyUnit {
    /// Where the abbreviation offset is: DWARF 5 puts unit_type and
    /// address_size before it.
    fn abbrev_offset_at(&self) -> usize {
        let version_size = 2;
        let before = if self.version >= 5 { 2 } else { 0 };
        self.offset + self.format.initial_length_size() as usize + version_size + before
    }

    fn root_at(&self) -> usize {
        self.offset + self.header_size
    }

    /// Whether both rewrites land inside the unit, of a version whose
    /// layout is known.
    fn fits(&self) -> bool {
        (2..=5).contains(&self.version)
            && self.abbrev_offset_at() + self.format.word_size() as usize <= self.root_at()
            && self.root_at() < self.end
    }
}

struct Plan {
    emptied: Vec<EmptyUnit>,
    /// Byte ranges of the arange sets to keep.
    kept_sets: Vec<std::ops::Range<usize>>,
    units: usize,
}

fn plan(info: Slice<'_>, abbrev: Slice<'_>, aranges: Slice<'_>, svmas: &[u64]) -> Option<Plan> {
    // Per arange set: its bytes and its unit; which units cover an address.
    let mut sets = Vec::new();
    let mut described = HashSet::new();
    let mut needed = HashSet::new();
    let mut headers = DebugAranges::from(aranges).headers();
    while let Some(header) = headers.next().ok()? {
        let unit = header.debug_info_offset().0;
        let start = header.offset().0;
        let end = start
            .checked_add(header.length())?
            .checked_add(header.encoding().format.initial_length_size() as usize)?;
        sets.push((start..end, unit));
        let mut entries = header.entries();
        while let Some(entry) = entries.next().ok()? {
            let range = entry.range();
            if range.begin >= range.end {
                continue;
            }
            described.insert(unit);
            let first = svmas.partition_point(|&a| a < range.begin);
            let last = svmas.partition_point(|&a| a < range.end);
            if first < last {
                needed.insert(unit);
            }
        }
    }
    let mut emptied = Vec::new();
    let mut units = 0;
    let mut iter = DebugInfo::from(info).units();
    while let Some(header) = iter.next().ok()? {
        units += 1;
        let offset = header.debug_info_offset()?.0;
        let compile = matches!(header.type_(), UnitType::Compilation);
        let unit = EmptyUnit {
            offset,
            format: header.format(),
            version: header.version(),
            header_size: header.header_size(),
            end: offset.checked_add(header.length_including_self())?,
        };
        if compile && unit.fits() && described.contains(&offset) && !needed.contains(&offset) {
            emptied.push(unit);
        } else if may_refer_elsewhere(abbrev, header.debug_abbrev_offset().0)? {
            return None;
        }
    }
    if emptied.is_empty() {
        return None;
    }
    let emptied_offsets: HashSet<usize> = emptied.iter().map(|unit| unit.offset).collect();
    let kept_sets = sets
        .into_iter()
        .filter(|(_, unit)| !emptied_offsets.contains(unit))
        .map(|(bytes, _)| bytes)
        .collect();
    Some(Plan {
        emptied,
        kept_sets,
        units,
    })
}

/// Whether the abbreviation table at `offset` uses a form that can refer
/// to a DIE outside its own unit (or hides its form); `None` when the table
/// cannot be read. Walks the raw table: gimli's parse allocates, and only
/// the forms matter here.
fn may_refer_elsewhere(debug_abbrev: Slice<'_>, offset: usize) -> Option<bool> {
    let mut table = debug_abbrev;
    table.skip(offset).ok()?;
    loop {
        if table.read_uleb128().ok()? == 0 {
            return Some(false);
        }
        table.read_uleb128().ok()?; // tag
        table.read_u8().ok()?; // has children
        loop {
            let name = table.read_uleb128().ok()?;
            let form = gimli::DwForm(u16::try_from(table.read_uleb128().ok()?).ok()?);
            if form == gimli::DW_FORM_implicit_const {
                table.read_sleb128().ok()?;
            }
            if name == 0 && form.0 == 0 {
                break;
            }
            if form == gimli::DW_FORM_ref_addr || form == gimli::DW_FORM_indirect {
                return Some(true);
            }
        }
    }
}

/// Rewrites the sections; every bound was checked by `plan`, and nothing
/// changes unless all of it can.
fn rewrite(sections: &mut UnitSections<'_>, endian: RunTimeEndian, plan: Plan) -> Option<()> {
    let empty_table = sections.abbrev.len() as u64;
    if plan
        .emptied
        .iter()
        .any(|unit| unit.format == Format::Dwarf32)
        && u32::try_from(empty_table).is_err()
    {
        return None;
    }
    let mut aranges = Vec::new();
    for set in plan.kept_sets {
        aranges.extend_from_slice(sections.aranges.get(set)?);
    }
    sections.aranges = Cow::Owned(aranges);
    // One table for every emptied unit: code 1, a compile unit without
    // children or attributes.
    sections.abbrev.to_mut().extend_from_slice(&[
        1,
        gimli::DW_TAG_compile_unit.0 as u8,
        0,
        0,
        0,
        0,
    ]);
    let info = sections.info.to_mut();
    for unit in &plan.emptied {
        let at = unit.abbrev_offset_at();
        write_word(
            &mut info[at..at + unit.format.word_size() as usize],
            empty_table,
            endian,
        );
        info[unit.root_at()] = 1;
    }
    Some(())
}

/// Writes `value` (checked to fit) as a 4- or 8-byte word.
fn write_word(slot: &mut [u8], value: u64, endian: RunTimeEndian) {
    let little = matches!(endian, RunTimeEndian::Little);
    match slot.len() {
        4 => {
            let value = value as u32;
            slot.copy_from_slice(&if little {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            });
        }
        _ => slot.copy_from_slice(&if little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(bytes: &[u8]) -> Slice<'_> {
        Slice::new(bytes, RunTimeEndian::Little)
    }

    #[test]
    fn ref_addr_anywhere_in_a_table_is_seen() {
        // code 1 compile_unit, children, (name strp) ; code 2 subprogram,
        // (abstract_origin ref_addr) ; end.
        let with_ref_addr = [
            1, 0x11, 1, 0x03, 0x0e, 0, 0, //
            2, 0x2e, 0, 0x31, 0x10, 0, 0, //
            0,
        ];
        assert_eq!(may_refer_elsewhere(table(&with_ref_addr), 0), Some(true));
        // The same with ref4 (unit-relative), and an implicit_const.
        let unit_local = [
            1, 0x11, 1, 0x03, 0x0e, 0x0b, 0x21, 0x7f, 0, 0, //
            2, 0x2e, 0, 0x31, 0x13, 0, 0, //
            0,
        ];
        assert_eq!(may_refer_elsewhere(table(&unit_local), 0), Some(false));
        // A table cut short cannot be judged.
        assert_eq!(may_refer_elsewhere(table(&unit_local[..9]), 0), None);
        assert_eq!(may_refer_elsewhere(table(&unit_local), 99), None);
    }

    #[test]
    fn no_arange_sets_no_rewrite() {
        let mut sections = UnitSections {
            info: Cow::Borrowed(&[]),
            abbrev: Cow::Borrowed(&[]),
            aranges: Cow::Borrowed(&[]),
        };
        assert_eq!(
            keep_units_covering(&mut sections, RunTimeEndian::Little, &[0x1000]),
            None
        );
        // Nothing to empty is not a rewrite either.
        assert_eq!(
            keep_units_covering(&mut sections, RunTimeEndian::Little, &[]),
            None
        );
    }
}
