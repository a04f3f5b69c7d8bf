/** Idle workers waiting for work: each sleeps until its next tick, or until `wake` says there is work now. */
export class Waiters {
  private readonly waiting = new Set<() => void>();

  wake(): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w();
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }
}
