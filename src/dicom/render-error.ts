import type { Fault } from '../util/faults.js';

/**
 * An instance that cannot be rendered; the message names the SOP Instance UID, transfer syntax and fault. No retry
 * renders it, so its job ends at once.
 */
export class RenderError extends Error implements Fault {
  readonly fault = 'permanent';

  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}
