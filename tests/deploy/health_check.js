// health_check.js TARGET SERVICE [WAIT_MS]: one grpc.health.v1.Health/Check
// with @grpc/grpc-js and a stub made by @grpc/proto-loader from
// proto/grpc/health/v1/health.proto: a third-party gRPC client, not ours.
// Prints the ServingStatus (or "error CODE DETAILS"); exit 0 when SERVING.
// With WAIT_MS, asks again every 100 ms until SERVING or WAIT_MS passed.
'use strict';
const path = require('path');
const top = path.resolve(__dirname, '..', '..');
const nm = path.join(top, 'sdk', 'node', 'node_modules');
const grpc = require(path.join(nm, '@grpc', 'grpc-js'));
const loader = require(path.join(nm, '@grpc', 'proto-loader'));

const [target, service = '', waitArg = '0'] = process.argv.slice(2);
const def = loader.loadSync(path.join(top, 'proto', 'grpc', 'health', 'v1', 'health.proto'),
                            {enums: String});
const Health = grpc.loadPackageDefinition(def).grpc.health.v1.Health;
const client = new Health(target, grpc.credentials.createInsecure());
const end = Date.now() + Number(waitArg);

function once() {
  client.Check({service}, {deadline: Date.now() + 2000}, (err, r) => {
    const out = err ? `error ${err.code} ${err.details}` : r.status;
    if (out === 'SERVING' || Date.now() >= end) {
      console.log(out);
      client.close();
      process.exit(out === 'SERVING' ? 0 : 1);
    }
    setTimeout(once, 100);
  });
}
once();
