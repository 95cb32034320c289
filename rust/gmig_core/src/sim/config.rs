// SPDX-License-Identifier: GPL-2.0

//! PCI configuration space of the sim vGPU (256 bytes).
//!
//! Intel vendor id, a Gen9 device id (0x1912, HD Graphics 530), VGA class,
//! a 64-bit memory BAR0 of [`super::regs::BAR0_SIZE`] and an MSI capability
//! (64-bit address, one vector). Writes only change writable bits: the
//! command register's I/O, memory, bus-master and INTx-disable bits, the BAR
//! address bits (writing all ones reads back the size mask, as on real
//! hardware), the interrupt line, and the MSI control/address/data fields.

use super::regs::BAR0_SIZE;

/// Size of the configuration space.
pub const CONFIG_SIZE: usize = 256;
/// Intel.
pub const VENDOR_ID: u16 = 0x8086;
/// A Gen9 GT2 (Skylake HD Graphics 530).
pub const DEVICE_ID: u16 = 0x1912;
/// Offset of the MSI capability.
pub const MSI_CAP: usize = 0xd0;

const COMMAND: usize = 0x04;
const BAR0: usize = 0x10;
const INTERRUPT_LINE: usize = 0x3c;
/// Command register bits a driver may set: I/O, memory, bus master, INTx
/// disable.
const COMMAND_WRITABLE: u16 = 0x0001 | 0x0002 | 0x0004 | 0x0400;

/// Error of a config space access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Offset or length outside the 256 bytes, or a length other than 1,
    /// 2 or 4, or an access that is not naturally aligned.
    BadAccess,
}

/// The configuration space.
#[derive(Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSpace {
    /// A freshly reset configuration space.
    pub fn new() -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SIZE],
        };
        c.put16(0x00, VENDOR_ID);
        c.put16(0x02, DEVICE_ID);
        c.put16(0x06, 0x0010); // status: capability list
        c.bytes[0x08] = 0x07; // revision
        c.put32(0x08, 0x0300_0007); // class VGA, revision 7
        c.put32(BAR0, 0x4); // 64-bit memory BAR
        c.put16(0x2c, VENDOR_ID); // subsystem vendor
        c.put16(0x2e, 0x2212); // subsystem id
        c.bytes[0x34] = MSI_CAP as u8; // capability pointer
        c.bytes[0x3d] = 1; // interrupt pin A
        c.bytes[MSI_CAP] = 0x05; // MSI
        c.bytes[MSI_CAP + 1] = 0; // end of list
        c.put16(MSI_CAP + 2, 0x0080); // 64-bit, 1 vector, disabled
        c
    }

    fn put16(&mut self, off: usize, v: u16) {
        if let Some(b) = self.bytes.get_mut(off..off + 2) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn put32(&mut self, off: usize, v: u32) {
        if let Some(b) = self.bytes.get_mut(off..off + 4) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn get16(&self, off: usize) -> u16 {
        let mut b = [0u8; 2];
        if let Some(s) = self.bytes.get(off..off + 2) {
            b.copy_from_slice(s);
        }
        u16::from_le_bytes(b)
    }

    fn get32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = self.bytes.get(off..off + 4) {
            b.copy_from_slice(s);
        }
        u32::from_le_bytes(b)
    }

    fn check(off: u64, len: usize) -> Result<usize, ConfigError> {
        let off = usize::try_from(off).map_err(|_| ConfigError::BadAccess)?;
        if !matches!(len, 1 | 2 | 4) || off % len != 0 || off.saturating_add(len) > CONFIG_SIZE {
            return Err(ConfigError::BadAccess);
        }
        Ok(off)
    }

    /// Reads `buf.len()` (1, 2 or 4) bytes at `off`.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), ConfigError> {
        let off = Self::check(off, buf.len())?;
        let src = self
            .bytes
            .get(off..off + buf.len())
            .ok_or(ConfigError::BadAccess)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Writes `buf.len()` (1, 2 or 4) bytes at `off`; read-only bits keep
    /// their value.
    pub fn write(&mut self, off: u64, buf: &[u8]) -> Result<(), ConfigError> {
        let off = Self::check(off, buf.len())?;
        for (i, &b) in buf.iter().enumerate() {
            self.write_byte(off + i, b);
        }
        Ok(())
    }

    fn write_byte(&mut self, off: usize, val: u8) {
        let mask: u8 = match off {
            0x04 => COMMAND_WRITABLE.to_le_bytes()[0],
            0x05 => COMMAND_WRITABLE.to_le_bytes()[1],
            // BAR0 low dword: address bits above the size; bits 3:0 are type.
            0x10..=0x13 => {
                let m = !(BAR0_SIZE as u32 - 1);
                m.to_le_bytes()[off - 0x10]
            }
            0x14..=0x17 => 0xff, // BAR0 high dword
            INTERRUPT_LINE => 0xff,
            o if o == MSI_CAP + 2 => 0x01, // MSI enable
            o if (MSI_CAP + 4..MSI_CAP + 14).contains(&o) => 0xff, // addr, data
            _ => 0,
        };
        if let Some(b) = self.bytes.get_mut(off) {
            *b = (*b & !mask) | (val & mask);
        }
    }

    /// Memory space decoding is enabled.
    pub fn memory_enabled(&self) -> bool {
        self.get16(COMMAND) & 0x2 != 0
    }

    /// INTx is disabled by the command register.
    pub fn intx_disabled(&self) -> bool {
        self.get16(COMMAND) & 0x400 != 0
    }

    /// MSI is enabled.
    pub fn msi_enabled(&self) -> bool {
        self.get16(MSI_CAP + 2) & 1 != 0
    }

    /// MSI address and data.
    pub fn msi(&self) -> (u64, u16) {
        let lo = u64::from(self.get32(MSI_CAP + 4));
        let hi = u64::from(self.get32(MSI_CAP + 8));
        (lo | (hi << 32), self.get16(MSI_CAP + 12))
    }

    /// The raw bytes (migration state).
    pub fn bytes(&self) -> &[u8; CONFIG_SIZE] {
        &self.bytes
    }

    /// Restores migrated bytes through the write masks: identity fields
    /// keep this device's values.
    pub fn restore(&mut self, bytes: &[u8; CONFIG_SIZE]) {
        for (i, &b) in bytes.iter().enumerate() {
            self.write_byte(i, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd32(c: &ConfigSpace, off: u64) -> u32 {
        let mut b = [0u8; 4];
        c.read(off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity_is_read_only() {
        let mut c = ConfigSpace::new();
        assert_eq!(rd32(&c, 0), 0x1912_8086);
        c.write(0, &0xffff_ffffu32.to_le_bytes()).unwrap();
        assert_eq!(rd32(&c, 0), 0x1912_8086);
        assert_eq!(rd32(&c, 8) >> 8, 0x03_0000);
    }

    #[test]
    fn bar_sizing() {
        let mut c = ConfigSpace::new();
        c.write(0x10, &0xffff_ffffu32.to_le_bytes()).unwrap();
        assert_eq!(rd32(&c, 0x10), !(BAR0_SIZE as u32 - 1) | 0x4);
        c.write(0x10, &0xfe00_0000u32.to_le_bytes()).unwrap();
        assert_eq!(rd32(&c, 0x10), 0xfe00_0004);
    }

    #[test]
    fn command_and_msi() {
        let mut c = ConfigSpace::new();
        c.write(4, &0xffffu16.to_le_bytes()).unwrap();
        assert_eq!(rd32(&c, 4) & 0xffff, u32::from(COMMAND_WRITABLE));
        assert!(c.memory_enabled() && c.intx_disabled());
        assert!(!c.msi_enabled());
        c.write(MSI_CAP as u64 + 2, &1u16.to_le_bytes()).unwrap();
        c.write(MSI_CAP as u64 + 4, &0xfee0_0000u32.to_le_bytes())
            .unwrap();
        c.write(MSI_CAP as u64 + 12, &0x41u16.to_le_bytes())
            .unwrap();
        assert!(c.msi_enabled());
        assert_eq!(c.msi(), (0xfee0_0000, 0x41));
    }

    #[test]
    fn bad_accesses() {
        let mut c = ConfigSpace::new();
        let mut b = [0u8; 4];
        assert_eq!(c.read(254, &mut b), Err(ConfigError::BadAccess));
        assert_eq!(c.read(2, &mut b), Err(ConfigError::BadAccess));
        assert_eq!(c.read(u64::MAX, &mut b[..1]), Err(ConfigError::BadAccess));
        assert_eq!(c.write(0, &[0u8; 3]), Err(ConfigError::BadAccess));
        assert_eq!(c.read(0, &mut [0u8; 8]), Err(ConfigError::BadAccess));
    }
}
