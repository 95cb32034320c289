// SPDX-License-Identifier: GPL-2.0

//! Mesa's description of the Gen9 commands (its genxml, as
//! trace/genxml-table.py tabulates it) and the check of gmig's command
//! parser against it: for each command of a captured batch, the same
//! command (opcode), the same length, and the same value in every address
//! field gmig's analysis uses.

use gmig_core::cmd::{Command, Kind};
use std::fmt;

/// An address field of a command, as Mesa describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrField {
    /// Dword of the field's first bit.
    pub dword: usize,
    /// First bit, in that dword.
    pub low: u32,
    /// Last bit, counted from the start of that dword (may reach into the
    /// next one).
    pub high: u32,
    /// Mesa's name for it.
    pub name: String,
}

impl AddrField {
    /// The address the field holds in `cmd` (bits below `low` zero).
    pub fn read(&self, cmd: &[u32]) -> Option<u64> {
        let lo = u64::from(*cmd.get(self.dword)?);
        let hi = if self.high >= 32 {
            u64::from(*cmd.get(self.dword + 1)?)
        } else {
            0
        };
        let qw = lo | hi << 32;
        let width = self.high - self.low + 1;
        let mask = if width >= 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        Some((qw >> self.low & mask) << self.low)
    }
}

/// How long a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Always this many dwords.
    Fixed(usize),
    /// The DWord Length field (bits `low..=high` of dword 0) plus `bias`.
    Field {
        /// Its first bit.
        low: u32,
        /// Its last bit.
        high: u32,
        /// Added to its value.
        bias: usize,
    },
}

/// One instruction of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Mesa's name.
    pub name: String,
    /// Bits of dword 0 that identify it.
    pub mask: u32,
    /// Their value.
    pub value: u32,
    /// Its length.
    pub length: Length,
    /// Its own address fields.
    pub addrs: Vec<AddrField>,
    /// The engines it runs on (`None`: every engine).
    pub engines: Option<Vec<String>>,
}

impl Instruction {
    /// The length of the command with header `dw0`.
    pub fn len(&self, dw0: u32) -> usize {
        match self.length {
            Length::Fixed(n) => n,
            Length::Field { low, high, bias } => {
                let w = high - low + 1;
                ((dw0 >> low) & ((1u32 << w) - 1)) as usize + bias
            }
        }
    }
}

/// A table line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub usize);

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "genxml table line {}: not NAME MASK VALUE LENGTH ADDRESSES",
            self.0
        )
    }
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok()
}

fn parse_line(line: &str) -> Option<Instruction> {
    let f: Vec<&str> = line.split('\t').collect();
    let [name, mask, value, length, addrs, engines] = f[..] else {
        return None;
    };
    let engines = (engines != "all").then(|| engines.split('|').map(str::to_string).collect());
    let length = match length.strip_prefix("v:") {
        Some(v) => {
            let p: Vec<u32> = v
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            let [low, high, bias] = p[..] else {
                return None;
            };
            if high < low || high >= 32 {
                return None;
            }
            Length::Field {
                low,
                high,
                bias: bias as usize,
            }
        }
        None => Length::Fixed(length.parse().ok()?),
    };
    let mut fields = Vec::new();
    if addrs != "-" {
        for a in addrs.split(';') {
            let mut p = a.splitn(4, ':');
            let dword = p.next()?.parse().ok()?;
            let low: u32 = p.next()?.parse().ok()?;
            let high: u32 = p.next()?.parse().ok()?;
            if high < low || high >= 64 {
                return None;
            }
            fields.push(AddrField {
                dword,
                low,
                high,
                name: p.next()?.to_string(),
            });
        }
    }
    Some(Instruction {
        name: name.to_string(),
        mask: hex(mask)?,
        value: hex(value)?,
        length,
        addrs: fields,
        engines,
    })
}

/// Mesa's Gen9 instructions.
pub struct Table {
    ins: Vec<Instruction>,
}

impl Table {
    /// Parses trace/genxml-table.py's output.
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let mut ins = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            ins.push(parse_line(line).ok_or(TableError(i + 1))?);
        }
        Ok(Self { ins })
    }

    /// The instruction of `engine` ("render", "blitter", "video") whose
    /// identifying bits match `dw0`: the one with the most such bits (a
    /// command and its more specific variants share a prefix), `None` if
    /// none matches.
    pub fn lookup(&self, dw0: u32, engine: &str) -> Option<&Instruction> {
        self.ins
            .iter()
            .filter(|i| dw0 & i.mask == i.value && i.mask != 0)
            .filter(|i| {
                i.engines
                    .as_ref()
                    .is_none_or(|e| e.iter().any(|e| e == engine))
            })
            .max_by_key(|i| i.mask.count_ones())
    }
}

/// How gmig's parser and Mesa's description disagree on one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Mesa knows the command, gmig's parser does not (or refuses this
    /// form of it).
    UnknownToGmig(String),
    /// gmig's parser knows a command Mesa does not describe.
    UnknownToMesa,
    /// The lengths differ (gmig, Mesa).
    Length(String, usize, usize),
    /// An address field the analysis uses reads differently (gmig,
    /// Mesa), or Mesa has no address field there.
    Address(String, usize, u64, Option<u64>),
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::UnknownToGmig(n) => {
                write!(
                    f,
                    "{n}: Mesa knows it, gmig's parser does not (or refuses it)"
                )
            }
            Mismatch::UnknownToMesa => {
                write!(f, "gmig's parser knows a command Mesa does not describe")
            }
            Mismatch::Length(n, g, m) => write!(f, "{n}: gmig says {g} dwords, Mesa {m}"),
            Mismatch::Address(n, dw, g, m) => match m {
                Some(m) => write!(f, "{n}: address at dword {dw}: gmig {g:#x}, Mesa {m:#x}"),
                None => write!(
                    f,
                    "{n}: gmig reads an address at dword {dw}, Mesa has none there"
                ),
            },
        }
    }
}

/// Whether gmig's write-set analysis (or its batch walk) uses the address
/// fields of a command of this kind.
fn addresses_used(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::MiBatchBufferStart { .. }
            | Kind::MiStoreDataImm
            | Kind::MiStoreRegisterMem
            | Kind::MiFlushDw
            | Kind::PipeControl
            | Kind::XyColorBlt
            | Kind::XySrcCopyBlt
            | Kind::XyFastCopyBlt
    )
}

/// Checks the command at the start of `cmd` (its whole length, as far as
/// the buffer holds it): `parsed` is gmig's decode (an error: gmig's parser
/// refused it).
pub fn check(
    table: &Table,
    engine: &str,
    cmd: &[u32],
    parsed: Option<&Command>,
) -> Option<Mismatch> {
    let dw0 = *cmd.first()?;
    let mesa = table.lookup(dw0, engine);
    let (c, m) = match (parsed, mesa) {
        (None, None) => return None,
        (None, Some(m)) => return Some(Mismatch::UnknownToGmig(m.name.clone())),
        (Some(_), None) => return Some(Mismatch::UnknownToMesa),
        (Some(c), Some(m)) => (c, m),
    };
    let mlen = m.len(dw0);
    if c.len != mlen {
        return Some(Mismatch::Length(m.name.clone(), c.len, mlen));
    }
    if !addresses_used(c.kind) {
        return None;
    }
    // The caller decoded the command at offset 0: AddrRef dwords are
    // relative to it.
    for a in c.addrs() {
        let Some(ours) = a.read(cmd) else {
            return Some(Mismatch::Address(m.name.clone(), a.dword, 0, None));
        };
        match m.addrs.iter().find(|f| f.dword == a.dword) {
            Some(f) => {
                // A field wider than the GPU's 48-bit addresses holds them
                // sign-extended (canonical): the GPU uses bits 47:0.
                let theirs = f.read(cmd).and_then(|v| {
                    if f.dword * 32 + f.high as usize <= f.dword * 32 + 47 {
                        return Some(v);
                    }
                    let top = v >> 47;
                    let canonical = top == 0 || top == (1 << 17) - 1;
                    canonical.then_some(v & ((1 << 48) - 1))
                });
                if theirs != Some(ours) {
                    return Some(Mismatch::Address(m.name.clone(), a.dword, ours, theirs));
                }
            }
            None => return Some(Mismatch::Address(m.name.clone(), a.dword, ours, None)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use gmig_core::cmd::Mode;

    const TABLE: &str = "MI_NOOP\tff800000\t00000000\t1\t-\tall\n\
MI_STORE_DATA_IMM\tff800000\t10000000\tv:0:9:2\t1:2:47:Address\tall\n\
PIPE_CONTROL\tffff0000\t7a000000\tv:0:7:2\t2:2:47:Address\trender\n\
GPGPU_WALKER\tffff0000\t71050000\tv:0:7:2\t-\trender\n\
MFX_AVC_WEIGHTOFFSET_STATE\tfffff000\t71050000\tv:0:11:2\t-\tvideo\n\
3DPRIMITIVE\tffff0000\t7b000000\tv:0:7:2\t-\trender\n";

    fn chk(cmd: &[u32]) -> Option<Mismatch> {
        let t = Table::parse(TABLE).unwrap();
        let c = Command::decode(cmd, 0, Mode::PPGTT).ok();
        check(&t, "render", cmd, c.as_ref())
    }

    #[test]
    fn agreeing_commands_pass() {
        assert_eq!(chk(&[0]), None);
        assert_eq!(chk(&[0x1000_0002, 0x1000, 0x2, 7]), None);
        assert_eq!(chk(&[0x7a00_0004, 0x0010_4000, 0x4_0008, 0x1, 0, 0]), None);
        assert_eq!(chk(&[0x7b00_0005, 0, 3, 0, 1, 0, 0]), None);
    }

    #[test]
    fn disagreements_are_found() {
        // A qword store: gmig's MI_STORE_DATA_IMM and Mesa's both say 5
        // dwords; a longer one gmig's parser refuses (as GVT-g does).
        assert_eq!(chk(&[0x1020_0003, 0x1000, 0, 1, 2]), None);
        assert!(matches!(
            chk(&[0x1000_0004, 0x1000, 0, 1, 2, 3]),
            Some(Mismatch::UnknownToGmig(_))
        ));
        // An address with bit 1 set: gmig keeps bits 1:0 as flags only
        // if Mesa does too.
        let t = Table::parse(&TABLE.replace("1:2:47", "1:3:47")).unwrap();
        let cmd = [0x1000_0002, 0x1004, 0, 7];
        let c = Command::decode(&cmd, 0, Mode::PPGTT).unwrap();
        assert!(matches!(
            check(&t, "render", &cmd, Some(&c)),
            Some(Mismatch::Address(..))
        ));
        let t = Table::parse(&TABLE.replace("v:0:9:2", "v:0:9:3")).unwrap();
        assert!(matches!(
            check(&t, "render", &cmd, Some(&c)),
            Some(Mismatch::Length(..))
        ));
        let t = Table::parse(&TABLE.replace("1:2:47:Address", "-")).unwrap();
        assert!(matches!(
            check(&t, "render", &cmd, Some(&c)),
            Some(Mismatch::Address(_, 1, 0x1004, None))
        ));
        // Unknown to one side.
        assert_eq!(chk(&[0x7c00_0000]), None);
        let t = Table::parse(&format!("{TABLE}XYZ\tffff0000\t7c000000\t1\t-\tall\n")).unwrap();
        assert!(matches!(
            check(&t, "render", &[0x7c00_0000], None),
            Some(Mismatch::UnknownToGmig(_))
        ));
        assert_eq!(
            check(
                &t,
                "render",
                &[0x7900_0000],
                Command::decode(&[0x7900_0000], 0, Mode::PPGTT)
                    .ok()
                    .as_ref()
            )
            .is_some(),
            Command::decode(&[0x7900_0000], 0, Mode::PPGTT).is_ok()
        );
    }

    #[test]
    fn commands_are_looked_up_on_their_engine() {
        // GPGPU_WALKER (render) and MFX_AVC_WEIGHTOFFSET_STATE (video)
        // share their first dword's identifying bits.
        let t = Table::parse(TABLE).unwrap();
        assert_eq!(
            t.lookup(0x7105_000d, "render").unwrap().name,
            "GPGPU_WALKER"
        );
        assert_eq!(
            t.lookup(0x7105_000d, "video").unwrap().name,
            "MFX_AVC_WEIGHTOFFSET_STATE"
        );
        assert!(t.lookup(0x7b00_0005, "blitter").is_none());
        assert_eq!(
            chk(&[0x7105_000d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn table_lines_that_do_not_parse_are_errors() {
        for bad in [
            "A\t1\t2\t3\n",
            "A\tff\t00\tv:9:1:2\t-\tall\n",
            "A\tzz\t00\t1\t-\tall\n",
            "A\tff\t00\t1\t1:2\tall\n",
            "A\tff\t00\t1\t-\n",
        ] {
            assert!(Table::parse(bad).is_err(), "{bad:?}");
        }
    }
}
