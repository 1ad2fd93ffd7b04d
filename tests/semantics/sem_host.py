"""sem_host.py - the Python actor host of the actor-semantics suites.

    sem_host.py --gateway TARGET --proto-out DIR --sem-out DIR [--system NAME]

On the Python SDK (sdk/python/spawn_host.py). Registers in system NAME
("sem" by default), with sem.Msg in and out and state sem.State, the same
generic actions as sem-host (sem_host.c) for:

    py      Next, Pipe, Forward, Effect, Publish, Get, Tag, GetTag, Meta
    pysub   like py, plus receive; subscribed to channel "news"
    pytick  like py, plus the timer action Tick every 50 ms

and prints the same lines: "registered", "next SELF TEXT caller=CALLER",
"got SELF ACTION TEXT caller=CALLER", "pipe SELF", "forward SELF",
"tick SELF N". --proto-out holds the generated spawn modules (build
tree python-gen), --sem-out the generated sem_pb2. SIGTERM: stop, exit 0.
"""

import argparse
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.normpath(os.path.join(HERE, "..", "..", "sdk", "python"))

_out = threading.Lock()


def say(line):
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--system", default="sem")
    ap.add_argument("--proto-out", required=True)
    ap.add_argument("--sem-out", required=True)
    args = ap.parse_args()
    sys.path[:0] = [args.proto_out, args.sem_out, SDK]

    import sem_pb2
    from spawn_host import ActorHost, unpack

    Msg, State = sem_pb2.Msg, sem_pb2.State

    def caller_of(ctx):
        c = ctx.caller
        return "%s/%s" % (c.system, c.name) if c is not None and c.name else "-"

    def reply(ctx, text, n=0):
        c = caller_of(ctx)
        return Msg(text=text, caller="" if c == "-" else c, n=n)

    def next_turn(state, msg, ctx):
        st = unpack(state, State)
        st.n += 1
        st.last = msg.text
        return st, reply(ctx, "%s>%s" % (msg.text, ctx.actor_name), st.n)

    def on_next(state, payload, ctx):
        msg = unpack(payload, Msg)
        say("next %s %s caller=%s" % (ctx.actor_name, msg.text, caller_of(ctx)))
        return next_turn(state, msg, ctx)

    def on_receive(state, payload, ctx):
        msg = unpack(payload, Msg)
        say("got %s %s %s caller=%s" % (ctx.actor_name, ctx.action, msg.text,
                                        caller_of(ctx)))
        return next_turn(state, msg, ctx)

    def on_pipe(state, payload, ctx):
        msg = unpack(payload, Msg)
        say("pipe %s" % ctx.actor_name)
        out = Msg()
        out.CopyFrom(msg)
        out.text = "%s>%s" % (msg.text, ctx.actor_name)
        out.to_actor = ctx.actor_name
        ctx.pipe(msg.to_actor, msg.to_action)
        return None, out

    def on_forward(state, payload, ctx):
        msg = unpack(payload, Msg)
        say("forward %s" % ctx.actor_name)
        ctx.forward(msg.to_actor, msg.to_action)
        return None, reply(ctx, "ignored")

    def on_effect(state, payload, ctx):
        msg = unpack(payload, Msg)
        ctx.side_effect(msg.to_actor, msg.to_action, Msg(text=msg.text),
                        system=msg.to_system or None, metadata=dict(msg.kv))
        return None, reply(ctx, "%s>%s!" % (msg.text, ctx.actor_name))

    def on_publish(state, payload, ctx):
        msg = unpack(payload, Msg)
        ctx.broadcast(msg.channel, Msg(text=msg.text))
        return None, reply(ctx, "published")

    def on_get(state, payload, ctx):
        st = unpack(state, State)
        return None, reply(ctx, st.last, st.n)

    def on_tag(state, payload, ctx):
        for k, v in unpack(payload, Msg).kv.items():
            if v:
                ctx.tags[k] = v
            else:
                ctx.tags.pop(k, None)
        return None, reply(ctx, "tagged")

    def on_get_tag(state, payload, ctx):
        return None, reply(ctx, ctx.tags.get(unpack(payload, Msg).text, "-"))

    def on_meta(state, payload, ctx):
        return None, reply(ctx, ctx.metadata.get("trace", "-"))

    def on_tick(state, payload, ctx):
        st = unpack(state, State)
        st.n += 1
        say("tick %s %d" % (ctx.actor_name, st.n))
        return st, None

    generic = {"Next": on_next, "Pipe": on_pipe, "Forward": on_forward,
               "Effect": on_effect, "Publish": on_publish, "Get": on_get,
               "Tag": on_tag, "GetTag": on_get_tag, "Meta": on_meta}

    host = ActorHost(args.gateway, args.system, service_name="sem-host-py",
                     workers=8, min_backoff=0.05, max_backoff=0.5,
                     on_registered=lambda h: say("registered"))
    host.add_actor("py", dict(generic), state_type=State)
    host.add_actor("pysub", dict(generic, receive=on_receive),
                   state_type=State, channels=["news"])
    host.add_actor("pytick", dict(generic, Tick=on_tick), state_type=State,
                   timers={"Tick": 50})

    done = threading.Event()

    def stop(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host.start()
    while not done.wait(3600):
        pass
    host.stop(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
