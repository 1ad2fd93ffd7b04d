// grpcjs_add.js TARGET PROTO_DIR VALUE: one Add on the Incrementor actor as
// a plain gRPC service, with @grpc/grpc-js and a stub @grpc/proto-loader
// makes from examples/incrementor-gen/incrementor.proto: a third-party
// client that knows nothing of Spawn. Prints the total, or
// "error CODE DETAILS" (exit 1).
'use strict';
const path = require('path');
const top = path.resolve(__dirname, '..', '..');
const nm = path.join(top, 'sdk', 'node', 'node_modules');
const grpc = require(path.join(nm, '@grpc', 'grpc-js'));
const loader = require(path.join(nm, '@grpc', 'proto-loader'));

const [target, protoDir, value, method = 'Add'] = process.argv.slice(2);
const def = loader.loadSync('incrementor.proto', {
  includeDirs: [path.join(top, 'examples', 'incrementor-gen'), protoDir, '/usr/include'],
  longs: String,
});
const Incrementor = grpc.loadPackageDefinition(def).examples.incrementor.Incrementor;
const client = new Incrementor(target, grpc.credentials.createInsecure());
client[method]({value: Number(value)}, {deadline: Date.now() + 10000}, (err, r) => {
  console.log(err ? `error ${err.code} ${err.details}` : r.total);
  client.close();
  process.exit(err ? 1 : 0);
});
