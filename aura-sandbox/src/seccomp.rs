//! The seccomp filters every guest child runs under (built here with seccompiler, shipped
//! to the runner as raw BPF, installed by the runner with `prctl` after `no_new_privs`).
//!
//! Five stacked filters (the kernel applies the strictest verdict of all, whatever their
//! order):
//! 1. **kill the process** on syscalls a guest never needs and that widen the attack
//!    surface: ptrace, the mount family, pivot_root, chroot, bpf, perf_event_open,
//!    keyrings, userfaultfd, io_uring, clone with any namespace flag, process_vm_*,
//!    kexec, module loading, swap, reboot, clock setting, …;
//! 2. **kill the process** on the three the child's own set-up still makes: unshare,
//!    setns and mount;
//! 3. **EPERM** for new processes and programs and for sockets: fork, vfork, clone
//!    without `CLONE_THREAD` (threads stay allowed), execve(at), socket, socketpair;
//! 4. **ENOSYS** for clone3 (its flags live in memory a filter cannot read; libc falls
//!    back to clone, which filters 1 and 3 inspect);
//! 5. (x86_64) **kill** on x32-ABI syscall numbers, which would bypass the number checks.
//!
//! Installing a filter costs the kernel a pass of it over every syscall number (its
//! action cache) and a JIT compilation: the four a child once installed took 7.6 % of
//! a jail call's CPU. So [`Filters::inherited`] (1, 4, 5) is installed once by the process that
//! forks the children (the jail's forker, or the plain-mode server), whose own work
//! none of them forbid, and every child inherits it at no cost; each child installs
//! only the short [`Filters::per_child`] (2, 3), which forbid what its parent and its
//! own set-up still do.

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

/// What the child's own set-up makes (a scratch mount in a mount namespace of its own)
/// and its parent (the forker enters and makes pid namespaces), so they go in the
/// child's own filter, installed after that set-up.
const KILLED_AFTER_SETUP: [i64; 3] = [libc::SYS_unshare, libc::SYS_setns, libc::SYS_mount];

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

/// The filters, split by who installs them.
pub(crate) struct Filters {
    /// Installed once by the process that forks the children, before the first fork.
    pub inherited: Vec<BpfProgram>,
    /// Installed by each child, after its set-up and right before guest code can run.
    pub per_child: Vec<BpfProgram>,
}

pub(crate) fn filters() -> Result<Filters> {
    let mut kill: BTreeMap<i64, Vec<SeccompRule>> = killed_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let ns_rules = CLONE_NS_FLAGS
        .iter()
        .map(|&f| clone_flags_rule(f, f))
        .collect::<Result<Vec<_>>>()?;
    kill.insert(libc::SYS_clone, ns_rules);
    let kill_after_setup = KILLED_AFTER_SETUP
        .iter()
        .map(|&nr| (nr, Vec::new()))
        .collect();

    let mut deny: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let thread = libc::CLONE_THREAD as u64;
    deny.insert(libc::SYS_clone, vec![clone_flags_rule(thread, 0)?]);

    let mut nosys = BTreeMap::new();
    nosys.insert(libc::SYS_clone3, Vec::new());

    let mut inherited = vec![
        compile(kill, SeccompAction::KillProcess)?,
        compile(nosys, SeccompAction::Errno(libc::ENOSYS as u32))?,
    ];
    if cfg!(target_arch = "x86_64") {
        inherited.push(x32_guard());
    }
    let per_child = vec![
        compile(kill_after_setup, SeccompAction::KillProcess)?,
        compile(deny, SeccompAction::Errno(libc::EPERM as u32))?,
    ];
    Ok(Filters {
        inherited,
        per_child,
    })
}

/// The runner's configuration `config` with the filters added as it takes them:
/// `seccomp_inherited` and `seccomp` (per child), each a list of hex strings of raw
/// `struct sock_filter` arrays (native byte order).
pub(crate) fn with_filters(mut config: serde_json::Value) -> Result<serde_json::Value> {
    let f = filters()?;
    let hexes = |progs: &[BpfProgram]| progs.iter().map(hex).collect::<Vec<_>>();
    config["seccomp_inherited"] = hexes(&f.inherited).into();
    config["seccomp"] = hexes(&f.per_child).into();
    Ok(config)
}

fn hex(prog: &BpfProgram) -> String {
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
}

/// The `pivot_root` syscall number, for the runner (glibc has no wrapper).
pub(crate) fn sys_pivot_root() -> i64 {
    libc::SYS_pivot_root
}

#[cfg(test)]
mod tests {
    use super::{filters, BpfProgram, KILLED_AFTER_SETUP};

    #[test]
    fn filters_compile() {
        let c = super::with_filters(serde_json::json!({})).expect("the filters compile");
        for key in ["seccomp_inherited", "seccomp"] {
            let progs = c[key].as_array().expect("a list");
            assert!(
                progs.len() >= 2
                    && progs
                        .iter()
                        .all(|p| p.as_str().is_some_and(|h| h.len() % 16 == 0)),
                "{key}: {progs:?}"
            );
        }
    }

    const KILL: u32 = 0x8000_0000;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;

    /// Runs one classic-BPF program over a `struct seccomp_data` (the opcodes
    /// seccompiler emits; any other fails the test).
    fn run(prog: &BpfProgram, data: &[u8; 64]) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let ins = &prog[pc];
            let k = ins.k;
            let jump = |taken: bool| pc + 1 + usize::from(if taken { ins.jt } else { ins.jf });
            pc = match ins.code {
                0x20 => {
                    let at = k as usize;
                    a = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                    pc + 1
                }
                0x54 => {
                    a &= k;
                    pc + 1
                }
                0x05 => pc + 1 + k as usize,
                0x15 => jump(a == k),
                0x25 => jump(a > k),
                0x35 => jump(a >= k),
                0x45 => jump(a & k != 0),
                0x06 => return k,
                other => panic!("opcode {other:#x} at {pc} is not interpreted here"),
            };
        }
    }

    /// The stacked verdict: the kernel takes the strictest (lowest as a signed action).
    fn verdict(progs: &[&BpfProgram], nr: i64, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
        data[4..8].copy_from_slice(&ARCH_AUDIT.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        progs
            .iter()
            .map(|p| run(p, &data) & 0xffff_0000)
            .min_by_key(|&v| v as i32)
            .unwrap_or(ALLOW)
    }

    #[cfg(target_arch = "x86_64")]
    const ARCH_AUDIT: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH_AUDIT: u32 = 0xc000_00b7;
    #[cfg(target_arch = "riscv64")]
    const ARCH_AUDIT: u32 = 0xc000_00f3;

    /// Split between the forker and each child, the stack still says what the module
    /// promises, syscall by syscall; and the forker's share leaves it, and a child's
    /// set-up, what they do.
    #[test]
    fn the_split_stack_keeps_every_verdict() {
        let f = filters().expect("the filters compile");
        let all: Vec<&BpfProgram> = f.inherited.iter().chain(&f.per_child).collect();
        let inherited: Vec<&BpfProgram> = f.inherited.iter().collect();
        let killed: Vec<i64> = super::killed_syscalls()
            .into_iter()
            .chain(KILLED_AFTER_SETUP)
            .collect();
        let denied = super::denied_syscalls();
        for nr in (0..512).filter(|&nr| nr != libc::SYS_clone) {
            let want = if killed.contains(&nr) {
                KILL
            } else if denied.contains(&nr) || nr == libc::SYS_clone3 {
                ERRNO
            } else {
                ALLOW
            };
            assert_eq!(verdict(&all, nr, 0), want, "syscall {nr}");
        }
        let clone = libc::SYS_clone;
        let fork_flags = libc::SIGCHLD as u64;
        let thread_flags = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(verdict(&all, clone, fork_flags), ERRNO, "fork");
        assert_eq!(verdict(&all, clone, thread_flags), ALLOW, "a thread");
        for ns in super::CLONE_NS_FLAGS {
            assert_eq!(verdict(&all, clone, fork_flags | ns), KILL, "clone {ns:#x}");
        }
        assert_eq!(verdict(&all, 0x4000_0000, 0), KILL, "x32 numbers");
        // What the forker and a child's set-up do, before the child's own filters.
        for nr in KILLED_AFTER_SETUP {
            assert_eq!(verdict(&inherited, nr, 0), ALLOW, "syscall {nr} in set-up");
        }
        assert_eq!(
            verdict(&inherited, clone, fork_flags),
            ALLOW,
            "the forker's fork"
        );
    }
}
