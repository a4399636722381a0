//! The seccomp filters every guest child installs (built here with seccompiler, shipped
//! to the runner as raw BPF, installed by the runner with `prctl` right before guest code
//! runs, after `no_new_privs`).
//!
//! Four stacked filters (the kernel applies the strictest verdict):
//! 1. **kill the process** on syscalls a guest never needs and that widen the attack
//!    surface: ptrace, mount family, pivot_root, chroot, bpf, perf_event_open, keyrings,
//!    userfaultfd, io_uring, unshare, setns, clone with any namespace flag,
//!    process_vm_*, kexec, module loading, swap, reboot, clock setting, …;
//! 2. **EPERM** for new processes and programs and for sockets: fork, vfork, clone
//!    without `CLONE_THREAD` (threads stay allowed), execve(at), socket, socketpair;
//! 3. **ENOSYS** for clone3 (its flags live in memory a filter cannot read; libc falls
//!    back to clone, which filter 1/2 inspect);
//! 4. (x86_64) **kill** on x32-ABI syscall numbers, which would bypass the number checks.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::{Error, Result};

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const ARCH: TargetArch = TargetArch::riscv64;

const CLONE_NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn killed_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_syslog,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_vhangup,
        libc::SYS_personality,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_modify_ldt,
        libc::SYS_lookup_dcookie,
    ]);
    v
}

fn denied_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_socket,
        libc::SYS_socketpair,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_fork, libc::SYS_vfork]);
    v
}

fn seccomp_err(e: impl std::fmt::Display) -> Error {
    Error::backend("jail", format!("building the seccomp filter: {e}"))
}

fn clone_flags_rule(mask: u64, value: u64) -> Result<SeccompRule> {
    let cond = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(mask),
        value,
    )
    .map_err(seccomp_err)?;
    SeccompRule::new(vec![cond]).map_err(seccomp_err)
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, on_match: SeccompAction) -> Result<BpfProgram> {
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, on_match, ARCH).map_err(seccomp_err)?;
    BpfProgram::try_from(filter).map_err(seccomp_err)
}

fn x32_guard() -> BpfProgram {
    // ld [nr]; jge 0x40000000 ? kill : allow
    vec![
        sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: 0x35,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x8000_0000,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        },
    ]
}

/// The filters, in installation order.
pub(crate) fn filters() -> Result<Vec<BpfProgram>> {
    let mut kill: BTreeMap<i64, Vec<SeccompRule>> = killed_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let ns_rules = CLONE_NS_FLAGS
        .iter()
        .map(|&f| clone_flags_rule(f, f))
        .collect::<Result<Vec<_>>>()?;
    kill.insert(libc::SYS_clone, ns_rules);

    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let thread = libc::CLONE_THREAD as u64;
    deny.insert(libc::SYS_clone, vec![clone_flags_rule(thread, 0)?]);

    let mut nosys = BTreeMap::new();
    nosys.insert(libc::SYS_clone3, Vec::new());

    let mut out = vec![
        compile(kill, SeccompAction::KillProcess)?,
        compile(deny, SeccompAction::Errno(libc::EPERM as u32))?,
        compile(nosys, SeccompAction::Errno(libc::ENOSYS as u32))?,
    ];
    if cfg!(target_arch = "x86_64") {
        out.push(x32_guard());
    }
    Ok(out)
}

/// The filters as hex strings of raw `struct sock_filter` arrays (native byte order).
pub(crate) fn filters_hex() -> Result<Vec<String>> {
    Ok(filters()?
        .iter()
        .map(|prog| {
            let mut s = String::with_capacity(prog.len() * 16);
            for ins in prog {
                let mut bytes = Vec::with_capacity(8);
                bytes.extend_from_slice(&ins.code.to_ne_bytes());
                bytes.push(ins.jt);
                bytes.push(ins.jf);
                bytes.extend_from_slice(&ins.k.to_ne_bytes());
                for b in bytes {
                    s.push_str(&format!("{b:02x}"));
                }
            }
            s
        })
        .collect())
}

/// The `pivot_root` syscall number, for the runner (glibc has no wrapper).
pub(crate) fn sys_pivot_root() -> i64 {
    libc::SYS_pivot_root
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_compile() {
        let f = super::filters_hex();
        assert!(f
            .as_ref()
            .is_ok_and(|f| f.len() >= 3 && f.iter().all(|p| p.len() % 16 == 0)));
    }
}
