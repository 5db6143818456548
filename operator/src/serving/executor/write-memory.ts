/**
 * Pods the executor wrote that the pod cache does not reflect yet (client-go's "expectations", kept small): created
 * pods until the cache shows them (their GPUs are taken and their groups not missing), deleted pods until it no
 * longer does (never counted as serving). Entries expire after `ttlMs`, and all of it is recoverable from the API:
 * a new leader only re-learns it from the caches.
 */
import type { V1Pod } from "@kubernetes/client-node";

export class WriteMemory {
  private readonly assumed = new Map<string, { ownerUid: string; pod: V1Pod; atMs: number }>();
  private readonly deleted = new Map<string, { uid?: string; atMs: number }>();

  constructor(private readonly ttlMs: number) {}

  /** Forgets what the cache now shows, and what expired. */
  sync(pods: readonly V1Pod[], nowMs: number): void {
    const byKey = new Map(pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.uid]));
    for (const [key, a] of this.assumed) if (byKey.has(key) || nowMs - a.atMs > this.ttlMs) this.assumed.delete(key);
    for (const [key, d] of this.deleted) {
      const uid = byKey.get(key);
      if (uid === undefined || (d.uid !== undefined && uid !== d.uid) || nowMs - d.atMs > this.ttlMs)
        this.deleted.delete(key);
    }
  }

  assume(ownerUid: string, pod: V1Pod, nowMs: number): void {
    this.assumed.set(`${pod.metadata?.namespace}/${pod.metadata?.name}`, { ownerUid, pod, atMs: nowMs });
  }

  assumedFor(ownerUid: string): V1Pod[] {
    return [...this.assumed.values()].filter((a) => a.ownerUid === ownerUid).map((a) => a.pod);
  }

  markDeleted(name: string, namespace: string, uid: string | undefined, nowMs: number): void {
    const key = `${namespace}/${name}`;
    this.assumed.delete(key);
    this.deleted.set(key, { uid, atMs: nowMs });
  }

  isDeleted(uid: string | undefined): boolean {
    if (uid === undefined) return false;
    for (const d of this.deleted.values()) if (d.uid === uid) return true;
    return false;
  }
}
