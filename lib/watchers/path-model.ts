// The directory tree as watch() knows it, kept from the event stream in
// order: each directory by its file handle, with its parent's handle and its
// name. A rename re-links one node, so its whole subtree is re-keyed at once;
// a delete drops one node. Paths are the chain of names up to a root (the
// directory a filesystem is named through), as they were at the event being
// processed, not as they are when it is read: that is what makes the paths
// of a late reader exact.
//
// Bounded: past `max` nodes the least recently used go (LRU). A directory
// whose chain is broken so is unknown again, and is looked up once more.

/** A node's parent: another node's key, or OUTSIDE (known not to be under any root). */
export const OUTSIDE = '';

interface Node {
  parent: string;
  name: string;
}

export class PathModel {
  readonly #max: number;
  readonly #nodes = new Map<string, Node>();
  readonly #roots = new Map<string, string>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** `key` is named `path` (a filesystem's mount point under the watched root, or the root). */
  setRoot(key: string, path: string): void {
    this.#roots.set(key, path);
    this.#nodes.delete(key);
  }

  isRoot(key: string): boolean {
    return this.#roots.has(key);
  }

  /** The directory `key` is `name` in `parent` (OUTSIDE: not under any root) from now on. */
  set(key: string, parent: string, name: string): void {
    if (this.#roots.has(key)) return;
    this.#nodes.delete(key);  // the newest at the end
    this.#nodes.set(key, { parent, name });
    if (this.#nodes.size > this.#max) this.#nodes.delete(this.#nodes.keys().next().value!);
  }

  /** Whether the model has something to say about `key` (a root, a node, or outside). */
  knows(key: string): boolean {
    return this.#roots.has(key) || this.#nodes.has(key);
  }

  delete(key: string): void {
    this.#nodes.delete(key);
  }

  /** Forgets every directory but the roots (after an overflow: renames were lost). */
  clear(): void {
    this.#nodes.clear();
  }

  /**
   * The path of `key`: a string; null when it is known to be outside every
   * root; undefined when its chain is not known (a directory never seen).
   */
  path(key: string): string | null | undefined {
    const names: string[] = [];
    let at = key;
    for (let depth = 0; depth <= this.#nodes.size; depth++) {
      const root = this.#roots.get(at);
      if (root !== undefined) {
        if (names.length === 0) return root;
        names.reverse();
        return root === '/' ? `/${names.join('/')}` : `${root}/${names.join('/')}`;
      }
      if (at === OUTSIDE) return null;
      const node = this.#nodes.get(at);
      if (node === undefined) return undefined;
      this.#nodes.delete(at);  // used: the newest
      this.#nodes.set(at, node);
      names.push(node.name);
      at = node.parent;
    }
    return undefined;  // a cycle: a stale node (should not happen); unknown
  }
}
