/**
 * Runs one block's train-step and eval sessions. Parameters, AdamW moments and
 * BN running statistics live in flat Float32Arrays owned here; each step reads
 * set A and writes set B through onnxruntime's preallocated outputs, then the
 * sets swap, so a step allocates no parameter-sized memory.
 */
import type { Session } from '../runtime/session.js';
import { float32Tensor, scalarTensor, type Tensor } from '../runtime/tensors.js';
import { IO } from './artifacts.js';
import type { ParamLayout } from '../blocks/params.js';

class PingPong {
  private a: Float32Array;
  private b: Float32Array;
  constructor(init: Float32Array) {
    this.a = Float32Array.from(init);
    this.b = new Float32Array(init.length);
  }
  get current(): Float32Array {
    return this.a;
  }
  set current(v: Float32Array) {
    this.a.set(v);
  }
  get spare(): Float32Array {
    return this.b;
  }
  swap(): void {
    [this.a, this.b] = [this.b, this.a];
  }
}

export interface StepResult {
  next: Tensor;
  loss: number;
  goodness: Float32Array;
}

export interface BlockWeights {
  params: Float32Array;
  state: Record<string, Float32Array>;
}

export interface BlockState extends BlockWeights {
  m: Float32Array;
  v: Float32Array;
  step: number;
}

export class BlockRunner {
  private readonly params: PingPong;
  private readonly m: PingPong;
  private readonly v: PingPong;
  private readonly stats = new Map<string, PingPong>();
  /**
   * Train-step outputs written in place from the second step on (the train graph has a fixed
   * batch): no fresh memory per step for the next block's input, which is costly where
   * touching new pages is. A StepResult's `next` and `goodness` are valid until this runner's next trainStep.
   */
  private stepOut?: { next: Tensor; goodness: Tensor };
  step = 0;
  lr: number;

  constructor(
    readonly name: string,
    readonly layout: ParamLayout,
    init: { params: Float32Array; state: Map<string, { data: Float32Array; dims: number[] }> },
    readonly sessions: { train?: Session; eval?: Session },
    readonly stateDims: Map<string, number[]>,
    lr: number,
  ) {
    this.params = new PingPong(init.params);
    this.m = new PingPong(new Float32Array(layout.total));
    this.v = new PingPong(new Float32Array(layout.total));
    for (const [k, s] of init.state) this.stats.set(k, new PingPong(s.data));
    this.lr = lr;
  }

  get trainable(): boolean {
    return this.sessions.train !== undefined;
  }

  private stateFeeds(): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    for (const [k, s] of this.stats) feeds[k] = float32Tensor(s.current, this.stateDims.get(k)!);
    return feeds;
  }

  /** One AdamW step on this block's own loss. */
  async trainStep(x: Tensor, labels: Tensor): Promise<StepResult> {
    const session = this.sessions.train;
    if (!session) throw new Error(`block ${this.name} is frozen`);
    const P = this.layout.total;
    const feeds: Record<string, Tensor> = {
      [IO.x]: x,
      [IO.labels]: labels,
      [IO.params]: float32Tensor(this.params.current, [P]),
      [IO.m]: float32Tensor(this.m.current, [P]),
      [IO.v]: float32Tensor(this.v.current, [P]),
      [IO.step]: scalarTensor(this.step + 1),
      [IO.lr]: scalarTensor(this.lr),
      ...this.stateFeeds(),
    };
    const reuse = this.stepOut && this.stepOut.next.dims[0] === x.dims[0] ? this.stepOut : undefined;
    const fetches: Record<string, Tensor | null> = {
      [IO.next]: reuse?.next ?? null,
      [IO.loss]: null,
      [IO.goodness]: reuse?.goodness ?? null,
      [IO.paramsOut]: float32Tensor(this.params.spare, [P]),
      [IO.mOut]: float32Tensor(this.m.spare, [P]),
      [IO.vOut]: float32Tensor(this.v.spare, [P]),
    };
    for (const [k, s] of this.stats) fetches[IO.stateOut(k)] = float32Tensor(s.spare, this.stateDims.get(k)!);
    const out = await session.run(feeds, fetches);
    this.params.swap();
    this.m.swap();
    this.v.swap();
    for (const s of this.stats.values()) s.swap();
    this.step++;
    const next = out[IO.next] as Tensor;
    const goodness = out[IO.goodness] as Tensor;
    if (!reuse && next.type === 'float32' && goodness.type === 'float32')
      this.stepOut = { next: float32Tensor(new Float32Array(next.size), next.dims), goodness: float32Tensor(new Float32Array(goodness.size), goodness.dims) };
    return { next, loss: (out[IO.loss]!.data as Float32Array)[0]!, goodness: goodness.data as Float32Array };
  }

  /** Forward with running statistics: the next block's input and the goodness. */
  async evaluate(x: Tensor): Promise<{ next: Tensor; goodness: Float32Array }> {
    const feeds: Record<string, Tensor> = {
      [IO.x]: x,
      [IO.params]: float32Tensor(this.params.current, [this.layout.total]),
      ...this.stateFeeds(),
    };
    if (!this.sessions.eval) throw new Error(`block ${this.name} was built without its eval graph`);
    const out = await this.sessions.eval.run(feeds);
    return { next: out[IO.next] as Tensor, goodness: out[IO.goodness]!.data as Float32Array };
  }

  /** A copy of everything a checkpoint needs. */
  snapshot(): BlockState {
    const state: Record<string, Float32Array> = {};
    for (const [k, s] of this.stats) state[k] = Float32Array.from(s.current);
    return { params: Float32Array.from(this.params.current), m: Float32Array.from(this.m.current), v: Float32Array.from(this.v.current), state, step: this.step };
  }

  /** A copy of the weights alone (parameters and running statistics), e.g. the best epoch's. */
  weights(): BlockWeights {
    const state: Record<string, Float32Array> = {};
    for (const [k, s] of this.stats) state[k] = Float32Array.from(s.current);
    return { params: Float32Array.from(this.params.current), state };
  }

  /** Puts weights back; the optimiser state is left as it is. */
  setWeights(w: BlockWeights): void {
    this.params.current = w.params;
    for (const [k, data] of Object.entries(w.state)) this.stats.get(k)!.current = data;
  }

  restore(s: BlockState): void {
    this.setWeights(s);
    this.m.current = s.m;
    this.v.current = s.v;
    this.step = s.step;
  }

  /** Current value of each parameter and running statistic (read-only views). */
  currentParams(): Float32Array {
    return this.params.current;
  }

  currentState(): Map<string, Float32Array> {
    return new Map([...this.stats].map(([k, s]) => [k, s.current]));
  }

  async release(): Promise<void> {
    await this.sessions.train?.release();
    await this.sessions.eval?.release();
  }
}
