import { describe, expect, it } from '@jest/globals';
import { AdaptiveLimiter } from '../src/model/adaptive-limit.js';
import { CircuitBreaker } from '../src/model/breaker.js';

describe('AdaptiveLimiter', () => {
  it('never lets more than the limit run at once', async () => {
    const limiter = new AdaptiveLimiter({ max: 3, initial: 3 });
    let running = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      const release = await limiter.acquire();
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      release();
    }));
    expect(peak).toBe(3);
    expect(limiter.peak).toBe(3);
  });

  it('grows by one per window of fast successes, up to the maximum', () => {
    const limiter = new AdaptiveLimiter({ max: 5, initial: 2 });
    for (let i = 0; i < 2; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(3);
    for (let i = 0; i < 100; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(5);
  });

  it('drops below the concurrency a 429 refused, holds that ceiling, and holds it longer when refused again soon', () => {
    let now = 0;
    const limiter = new AdaptiveLimiter({ max: 16, initial: 12, ceilingHoldMs: 5_000, now: () => now });
    limiter.overloaded(9);
    expect(limiter.limit).toBe(8);
    for (let i = 0; i < 100; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(8);
    now = 5_001;
    for (let i = 0; i < 8; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(9);
    limiter.overloaded(9);
    expect(limiter.limit).toBe(8);
    now = 11_000;
    for (let i = 0; i < 100; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(8);
    now = 15_002;
    for (let i = 0; i < 8; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(9);
  });

  it('follows a server that tightens during the hold down without holding the lower ceiling any longer', () => {
    let now = 0;
    const limiter = new AdaptiveLimiter({ max: 16, initial: 12, ceilingHoldMs: 5_000, now: () => now });
    limiter.overloaded(9);
    now = 2_000;
    limiter.overloaded(7);
    expect(limiter.limit).toBe(6);
    now = 4_000;
    limiter.overloaded(5);
    expect(limiter.limit).toBe(4);
    // Five seconds after the last refusal, not twenty: none of the three was a probe above a held ceiling.
    now = 9_001;
    for (let i = 0; i < 4; i++) limiter.succeeded(100);
    expect(limiter.limit).toBe(5);
  });

  it('backs off when latency runs far above its baseline', () => {
    const limiter = new AdaptiveLimiter({ max: 10, initial: 10 });
    limiter.succeeded(100);
    limiter.succeeded(1000);
    expect(limiter.limit).toBe(9);
  });
});

describe('CircuitBreaker', () => {
  it('opens after consecutive failures, lets one probe through after the pause, and closes on success', () => {
    let now = 0;
    const breaker = new CircuitBreaker(3, 1000, 8000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(breaker.blockedUntil()).toBeUndefined();
      breaker.failed();
    }
    expect(breaker.state).toBe('open');
    expect(breaker.blockedUntil()).toBe(1000);
    now = 1000;
    expect(breaker.blockedUntil()).toBeUndefined();
    expect(breaker.blockedUntil()).toBe(2000);
    breaker.failed();
    expect(breaker.state).toBe('open');
    now = 3000;
    expect(breaker.blockedUntil()).toBeUndefined();
    breaker.succeeded();
    expect(breaker.state).toBe('closed');
  });
});
