// $banner$
//
// Message types, typed clients and actor skeletons for $file$, on the spawn
// TypeScript runtime ($ts_sdk$). Messages are plain objects: the
// interfaces below describe what you receive (every field present, 64-bit
// integers as numbers, enums as numbers, bytes as Uint8Array, unset
// messages null); what you send is a spawn.DeepPartial of them. For each
// actor X:
//   XClient      one method per action: method(msg, opts?) -> Promise<reply>;
//                rejects with spawn.SpawnError (code, details)
//   XHandlers    one handler per action: stateful actors
//                (state, msg, ctx) -> { state?, reply?, checkpoint? },
//                stateless actors (msg, ctx) -> reply; may be async; throw
//                spawn.ActorError to fail with a gRPC code
//   registerX    declares the actor on a spawn.ActorHost with the settings
//                of its contract
$?ts_used$
import * as spawn from "$ts_sdk|js$";
$/ts_used$
$^ts_used$
export {};
$/ts_used$
$?ts_types$

// ---- message types ----

const spawnTypes = new spawn.TypeSet([
$#ts_types$
  ["$ts_full|js$", $ts_desc$],
$/ts_types$
]);
$/ts_types$
$#ts_types$
$?ts_is_enum$

/** enum $ts_full$ */
export const $ts_name$ = {
$#ts_values$
  $ts_value$: $ts_number$,
$/ts_values$
} as const;
export type $ts_name$ = (typeof $ts_name$)[keyof typeof $ts_name$];
$/ts_is_enum$
$^ts_is_enum$

/** message $ts_full$ */
export interface $ts_name$ {
$#ts_fields$
  $ts_field$$?ts_optional$?$/ts_optional$: $ts_ftype$;
$/ts_fields$
}
export const $ts_name$ = spawnTypes.codec<$ts_name$>("$ts_full|js$");
$/ts_is_enum$
$/ts_types$
$#actors$

// ---- actor $actor$ (service $actor_full$) ----
// kind $kind$, $?stateful$stateful, state $state$$/stateful$$^stateful$stateless$/stateful$; deactivate_timeout $deactivate_timeout_ms$ ms,
// snapshot_interval $snapshot_interval_ms$ ms (0 = the gateway's default)

/** Typed client of actor $actor$ ($kind$). */
export class $actor$Client {
  readonly #client: spawn.SpawnClient;
  readonly #system: string;

  constructor(client: spawn.SpawnClient, system = "spawn-system") {
    this.#client = client;
    this.#system = system;
  }
$#actions$

  /** $action$($input$) -> $output$ */
  $ts_method$(msg: spawn.DeepPartial<$input_ts$>, opts?: spawn.CallOptions): Promise<$output_ts$> {
    return spawn.typedCall(
      this.#client,
      { system: this.#system, actor: "$actor|js$", action: "$action|js$"$?unnamed$, unnamed: true$/unnamed$$?pooled$, pooled: true$/pooled$ },
      $input_ts$,
      $output_ts$,
      msg,
      opts,
    );
  }
$/actions$
}

/** The actions of actor $actor$, one handler each. */
export interface $actor$Handlers {
$#actions$
  /** $action$($input$) -> $output$ */
$?has_state$
  $ts_method$(state: $state_ts$, msg: $input_ts$, ctx: spawn.InvocationContext): spawn.ActionResult<$state_ts$, $output_ts$>;
$/has_state$
$^has_state$
  $ts_method$(msg: $input_ts$, ctx: spawn.InvocationContext): spawn.ReplyResult<$output_ts$>;
$/has_state$
$/actions$
}

/** Declares actor $actor$ on host with the settings of its contract, served by handlers. */
export function register$actor$(host: spawn.ActorHost, handlers: $actor$Handlers): spawn.ActorHost {
  return host.addActor(
    spawn.typedActor({
      name: "$actor|js$",
      kind: "$kind$",
      stateful: $?stateful$true$/stateful$$^stateful$false$/stateful$,
$?has_state$
      state: $state_ts$,
$/has_state$
      snapshotMs: $snapshot_interval_ms$,
      deactivateMs: $deactivate_timeout_ms$,
      actions: {
$#actions$
$?has_state$
        "$action|js$": spawn.stateAction($state_ts$, $input_ts$, $output_ts$, (s, m, ctx) => handlers.$ts_method$(s, m, ctx)),
$/has_state$
$^has_state$
        "$action|js$": spawn.statelessAction($input_ts$, $output_ts$, (m, ctx) => handlers.$ts_method$(m, ctx)),
$/has_state$
$/actions$
      },
    }),
  );
}
$/actors$
