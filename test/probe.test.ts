// probe() against the running kernel. Its answers must match what each
// mainline release brought (Debian's kernels carry no fanotify features of
// later releases, except the stable backport of FAN_REPORT_FD_ERROR), so a
// wrong answer on any kernel of the matrix fails here, and the answers must
// not depend on the filesystem that happened to be tried.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { probe } from '../lib';
import { since } from '../lib/kernel/capabilities';
import { start } from './children';
import { describeRoot, within } from './helpers';

// The release: "6.12.117+deb12-amd64"; Debian's 6.1 says "6.1.0-57-amd64"
// there and its real patch level in the version ("... Debian 6.1.192-3").
const release = /Debian (\d+)\.(\d+)\.(\d+)/.exec(os.version()) ?? /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(os.release())!;
const [major, minor, patch] = release.slice(1, 4).map((x) => Number(x ?? 0));
const atLeast = (v: string): boolean => {
  const [a, b] = v.split('.').map(Number);
  return major > a || (major === a && minor >= b);
};
// FAN_REPORT_FD_ERROR: 6.13, and the stable backports 6.12.4 and 6.6.66.
const hasFdError = atLeast('6.13') || (major === 6 && minor === 12 && patch >= 4) || (major === 6 && minor === 6 && patch >= 66);

describeRoot('probe()', () => {
  // The directory the kernel questions put their marks on lives only while
  // it is used: one kept until 'exit' was left by every process that died of
  // a signal (a daemon stopped by SIGTERM).
  test('a process killed after probing leaves no scratch directory behind', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-probe-kill-'));
    try {
      const dist = path.join(__dirname, '..', 'dist');
      const child = start(process.execPath, ['-e', `require(${JSON.stringify(dist)}).probe(); console.log('probed'); setInterval(() => {}, 1000);`],
        20_000, { env: { ...process.env, TMPDIR: tmp } });
      await within(10_000, (async () => {
        while (!child.out().includes('probed')) await new Promise((r) => setTimeout(r, 20));
      })(), 'the probe');
      child.child.kill('SIGKILL');
      await child.result;
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('every answer matches the release that brought the feature', () => {
    const f = probe();
    expect(f.available).toBe(true);
    expect(f.kernel).toBe(os.release());
    for (const group of [f.classes, f.groupFlags]) {
      for (const [name, ok] of Object.entries(group)) expect([name, ok]).toEqual([name, true]);
    }
    expect(f.report).toEqual({
      fid: true, dirFid: true, name: true, targetFid: atLeast('5.17'), pidfd: true, tid: true,
      fdError: hasFdError, mount: atLeast('6.15'),
    });
    expect(f.scopes).toEqual({ inode: true, mount: true, filesystem: true, mntns: atLeast('6.15') });
    expect(f.markFlags).toEqual({ evictable: atLeast('5.19'), ignore: atLeast('6.0') });
    for (const [name, ok] of Object.entries(f.events)) {
      const want = name === 'preAccess' ? atLeast('6.14')
        : name === 'mntAttach' || name === 'mntDetach' ? atLeast('6.15')
          : name === 'rename' ? atLeast('5.17') : true;  // the rest are older than 5.16, our oldest
      expect([name, ok]).toEqual([name, want]);
    }
    expect(f.events.fsError).toBe(true);  // 5.16: on every supported kernel, whatever filesystem was tried
    expect(f.records).toEqual({
      fid: true, dfid: true, dfidName: true, oldNewDfidName: atLeast('5.17'), pidfd: true, error: true,
      range: atLeast('6.14'), mnt: atLeast('6.15'),
    });
    expect(f.denyErrno).toBe(atLeast('6.14'));
    expect(f.auditRule).toBe(atLeast('6.3'));
    expect(f.mounts).toEqual({ mechanism: atLeast('6.15') ? 'fanotify' : 'mountinfo', mountIds: atLeast('6.8') ? 'unique' : 'reusable' });
    expect(f.filesystem).toBeUndefined();
  });

  test('the releases named in errors are the ones this test expects', () => {
    expect(since('preAccess')).toBe('6.14');
    expect(since('mountEvents')).toBe('6.15');
    expect(since('auditRule')).toBe('6.3');
    expect(since('listmount')).toBe('6.8');
    expect(since('reportFdError')).toMatch(/^6\.13/);
  });

  test('probe({ path }) answers for the filesystem there: tmpfs and ext4 on a loop device', async () => {
    const { LoopImage } = await import('../lib/testing');
    await using img = await LoopImage.create({ sizeMiB: 32 });
    const ext4 = probe({ path: img.mountPoint }).filesystem!;
    expect(ext4).toMatchObject({ path: img.mountPoint, fsType: 'ext4', fid: true, filesystemMark: true, fsError: true, preContent: atLeast('6.14') });
    if (!atLeast('6.14')) expect(ext4.reasons.preContent).toContain(os.release());

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-probe-test-'));
    const shm = path.join(tmp, 'shm');
    fs.mkdirSync(shm);
    require('node:child_process').execFileSync('mount', ['-t', 'tmpfs', 'none', shm]);
    try {
      const t = probe({ path: shm }).filesystem!;
      expect(t.fsType).toBe('tmpfs');
      expect(t.preContent).toBe(false);  // tmpfs has no pre-content support on any kernel
      expect(t.reasons.preContent).toBeDefined();
    } finally {
      require('node:child_process').execFileSync('umount', [shm]);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    expect(() => probe({ path: '/nonexistent/fanotify' })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  test('leaves no fd behind', () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    probe();
    probe({ path: os.tmpdir() });
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });
});
