// Behaviour tests of IntentRegistry (and the test tokens) against a real anvil node.
//
// The file starts its own anvil on a free 127.0.0.1 port (default dev accounts), deploys the
// compiled artifacts from CONTRACTS_DIR (default build/contracts; contracts/compile.sh makes
// them) and stops anvil when done, also when a test or the setup fails.
// Run: contracts/test/run.sh   (or: node --test contracts/test/)
//
// Every transaction is sent with a fixed gas limit, so that nothing is estimated against a
// pending block whose timestamp we do not control: each one is mined (automine) in its own
// block, at the timestamp set with evm_setNextBlockTimestamp where that matters. A reverted
// transaction's revert data comes from anvil's callTracer, so the reason checked is the one the
// mined transaction really produced.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NPM_DIR = process.env.NPM_DIR ?? path.join(ROOT, '.local/npm');
const CONTRACTS_DIR = process.env.CONTRACTS_DIR ?? path.join(ROOT, 'build/contracts');
// ethers lives in the project-local npm prefix, not in a node_modules above this file.
const {
    AbiCoder, Contract, ContractFactory, HDNodeWallet, JsonRpcProvider, Signature, TypedDataEncoder,
    concat, dataSlice, getBytes, hexlify, keccak256, randomBytes, toBeHex, verifyTypedData, MaxUint256,
} = createRequire(path.join(NPM_DIR, 'package.json'))('ethers');

const CHAIN_ID = 31337;
const MNEMONIC = 'test test test test test test test test test test test junk'; // anvil's default
const GAS = 1_000_000n;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const MAX_U64 = (1n << 64n) - 1n;

const INTENT_TYPES = {
    PaymentIntent: [
        { name: 'owner', type: 'address' },
        { name: 'token', type: 'address' },
        { name: 'recipient', type: 'address' },
        { name: 'amount', type: 'uint256' },
        { name: 'minInterval', type: 'uint64' },
        { name: 'validAfter', type: 'uint64' },
        { name: 'validUntil', type: 'uint64' },
        { name: 'maxExecutions', type: 'uint32' },
        { name: 'salt', type: 'bytes32' },
    ],
};

// ---- anvil --------------------------------------------------------------------------------

let anvil = null; // the child process
let anvilIsWrapper = false;
let anvilLog = '';

// The native binary when the platform package has it, so that the process we stop is anvil
// itself; otherwise the npm wrapper (.bin/anvil, a node script that spawns the native binary
// and forwards SIGINT/SIGTERM to it).
function anvilBinary() {
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
    const native = path.join(NPM_DIR, `node_modules/@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`);
    if (existsSync(native)) return { bin: native, wrapper: false };
    const wrapper = path.join(NPM_DIR, 'node_modules/.bin/anvil');
    if (existsSync(wrapper)) return { bin: wrapper, wrapper: true };
    throw new Error(`anvil not found under ${NPM_DIR} (run scripts/deps.sh)`);
}

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// Synchronous, so that it also works from an 'exit' handler. The wrapper gets SIGTERM, which it
// forwards; it could not forward a SIGKILL.
function stopAnvil() {
    if (!anvil || anvil.exitCode !== null || anvil.signalCode !== null) return;
    try {
        anvil.kill(anvilIsWrapper ? 'SIGTERM' : 'SIGKILL');
    } catch { /* already gone */ }
}
// Besides `after`: when the file's process ends some other way (an uncaught error, or the test
// runner stopping it with a signal). anvil stays in our process group, so a Ctrl-C in a
// terminal reaches it directly as well.
process.on('exit', stopAnvil);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.once(signal, () => {
        stopAnvil();
        process.exit(code);
    });
}

async function rpcOnce(url, method, params = []) {
    const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
        signal: AbortSignal.timeout(2000),
    });
    const body = await res.json();
    if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
    return body.result;
}

async function startAnvil() {
    const { bin, wrapper } = anvilBinary();
    anvilIsWrapper = wrapper;
    for (let attempt = 1; attempt <= 3; attempt++) {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        anvilLog = '';
        anvil = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(CHAIN_ID)], {
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        const keep = (d) => { anvilLog = (anvilLog + d).slice(-20000); };
        anvil.stdout.on('data', keep);
        anvil.stderr.on('data', keep);
        const exited = new Promise((resolve) => anvil.once('exit', () => resolve(true)));
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline) {
            if (anvil.exitCode !== null || anvil.signalCode !== null) break;
            try {
                if (Number(await rpcOnce(url, 'eth_chainId')) === CHAIN_ID) return url;
            } catch { /* not up yet */ }
            await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
        }
        stopAnvil();
        // Another process may have taken the port between freePort() and anvil's bind.
        if (attempt < 3 && /in use/i.test(anvilLog)) continue;
        throw new Error(`anvil did not come up on ${url}:\n${anvilLog}`);
    }
    throw new Error('unreachable');
}

// ---- chain helpers ------------------------------------------------------------------------

let provider;
let deployer, owner, recipient, stranger, owner2, recipient2;
let registry, usdc, noBool;
let registryAddress;
let domain;

function artifact(name) {
    const abiPath = path.join(CONTRACTS_DIR, `${name}.abi`);
    const binPath = path.join(CONTRACTS_DIR, `${name}.bin`);
    if (!existsSync(abiPath) || !existsSync(binPath)) {
        throw new Error(`missing ${name}.abi/.bin in ${CONTRACTS_DIR} (run contracts/compile.sh or set CONTRACTS_DIR)`);
    }
    return { abi: JSON.parse(readFileSync(abiPath, 'utf8')), bin: '0x' + readFileSync(binPath, 'utf8').trim() };
}

async function deploy(name, signer) {
    const { abi, bin } = artifact(name);
    const c = await new ContractFactory(abi, bin, signer).deploy({ gasLimit: 5_000_000n });
    await c.waitForDeployment();
    return c;
}

const rpc = (method, params = []) => provider.send(method, params);

async function latestTimestamp() {
    return BigInt((await provider.getBlock('latest')).timestamp);
}

// The next mined block (i.e. the next transaction) gets timestamp `t`.
async function setNextTimestamp(t) {
    await rpc('evm_setNextBlockTimestamp', [Number(t)]);
}

// Sends a transaction (a promise from a contract method called with { gasLimit }) and returns
// its receipt, mined or reverted. Automine mines it within eth_sendRawTransaction.
async function mined(txPromise) {
    const tx = await txPromise;
    for (let i = 0; i < 100; i++) {
        const receipt = await provider.getTransactionReceipt(tx.hash);
        if (receipt) return receipt;
        await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`transaction ${tx.hash} not mined`);
}

// The revert data of a mined, reverted transaction.
async function revertData(receipt) {
    const trace = await rpc('debug_traceTransaction', [receipt.hash, { tracer: 'callTracer' }]);
    return trace.output ?? '0x';
}

const ERROR_SELECTOR = '0x08c379a0'; // Error(string)
function errorData(message) {
    return concat([ERROR_SELECTOR, AbiCoder.defaultAbiCoder().encode(['string'], [message])]);
}
function decodeError(data) {
    if (data.length >= 10 && data.slice(0, 10) === ERROR_SELECTOR) {
        return AbiCoder.defaultAbiCoder().decode(['string'], dataSlice(data, 4))[0];
    }
    return `<revert data ${data}>`;
}

async function expectSuccess(txPromise) {
    const receipt = await mined(txPromise);
    if (receipt.status !== 1) {
        assert.fail(`transaction reverted: ${decodeError(await revertData(receipt))}`);
    }
    return receipt;
}

async function expectRevert(txPromise, reason) {
    const receipt = await mined(txPromise);
    assert.equal(receipt.status, 0, `expected a revert with "${reason}", but the transaction succeeded`);
    assert.equal(decodeError(await revertData(receipt)), reason);
    return receipt;
}

function events(receipt, contract, name) {
    const out = [];
    for (const log of receipt.logs) {
        if (log.address.toLowerCase() !== contract.target.toLowerCase()) continue;
        const parsed = contract.interface.parseLog(log);
        if (parsed && parsed.name === name) out.push(parsed.args);
    }
    return out;
}

// ---- intents ------------------------------------------------------------------------------

function makeIntent(overrides = {}) {
    return {
        owner: owner.address,
        token: usdc.target,
        recipient: recipient.address,
        amount: 25_000_000n, // 25 USDC
        minInterval: 0n,
        validAfter: 0n,
        validUntil: MAX_U64,
        maxExecutions: 0n,
        salt: hexlify(randomBytes(32)),
        ...overrides,
    };
}

const sign = (signer, intent) => signer.signTypedData(domain, INTENT_TYPES, intent);
const intentId = (intent) => TypedDataEncoder.hashStruct('PaymentIntent', INTENT_TYPES, intent);

function execute(intent, signature, count, from = deployer) {
    return registry.connect(from).execute(intent, signature, count, { gasLimit: GAS });
}

async function balances(token, ...addrs) {
    return Promise.all(addrs.map((a) => token.balanceOf(a)));
}

// ---- setup --------------------------------------------------------------------------------

before(async () => {
    const url = await startAnvil();
    provider = new JsonRpcProvider(url, CHAIN_ID, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
    // Dev account 0 is intentd's executor on a shared chain; these tests keep to 1..9 as well.
    const account = (i) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).connect(provider);
    [deployer, owner, recipient, stranger, owner2, recipient2] = [1, 2, 3, 4, 5, 6].map(account);

    registry = await deploy('IntentRegistry', deployer);
    usdc = await deploy('TestUSDC', deployer);
    noBool = await deploy('NoBoolToken', deployer);
    registryAddress = registry.target;
    domain = { name: 'FlowPay', version: '1', chainId: CHAIN_ID, verifyingContract: registryAddress };

    await expectSuccess(usdc.connect(stranger).mint(owner.address, 1_000_000_000_000n, { gasLimit: GAS }));
    await expectSuccess(usdc.connect(owner).approve(registryAddress, MaxUint256, { gasLimit: GAS }));
});

after(() => {
    stopAnvil();
});

// ---- tests --------------------------------------------------------------------------------

test('test tokens: TestUSDC metadata, open mint; NoBoolToken returns no data', async () => {
    assert.equal(await usdc.name(), 'USD Coin');
    assert.equal(await usdc.symbol(), 'USDC');
    assert.equal(await usdc.decimals(), 6n);
    const [before] = await balances(usdc, recipient2.address);
    await expectSuccess(usdc.connect(recipient2).mint(recipient2.address, 5n, { gasLimit: GAS }));
    assert.equal((await balances(usdc, recipient2.address))[0], before + 5n);

    // The point of NoBoolToken: its transfer returns nothing at all, not even a false.
    await expectSuccess(noBool.connect(stranger).mint(stranger.address, 10n, { gasLimit: GAS }));
    const data = noBool.interface.encodeFunctionData('transfer', [recipient2.address, 1n]);
    assert.equal(await provider.call({ from: stranger.address, to: noBool.target, data }), '0x');
});

test('EIP-712: domain separator, intent id and digest agree with ethers', async () => {
    const intent = makeIntent();
    assert.equal(await registry.DOMAIN_SEPARATOR(), TypedDataEncoder.hashDomain(domain));
    assert.equal(await registry.hashIntent(intent), intentId(intent));
    // The digest the owner's wallet signs (eth_signTypedData_v4) is what the registry verifies.
    const digest = keccak256(concat(['0x1901', await registry.DOMAIN_SEPARATOR(), await registry.hashIntent(intent)]));
    assert.equal(digest, TypedDataEncoder.hash(domain, INTENT_TYPES, intent));
    const signature = await sign(owner, intent);
    assert.equal(verifyTypedData(domain, INTENT_TYPES, intent, signature), owner.address);
    await expectSuccess(execute(intent, signature, 0));
});

test('happy path: moves the amount, emits Executed, records count and time', async () => {
    const intent = makeIntent({ amount: 12_345_678n });
    const id = intentId(intent);
    const signature = await sign(owner, intent);
    const [ownerBefore, recipientBefore] = await balances(usdc, owner.address, recipient.address);

    const receipt = await expectSuccess(execute(intent, signature, 0));

    const [ownerAfter, recipientAfter] = await balances(usdc, owner.address, recipient.address);
    assert.equal(ownerBefore - ownerAfter, 12_345_678n);
    assert.equal(recipientAfter - recipientBefore, 12_345_678n);

    const executed = events(receipt, registry, 'Executed');
    assert.equal(executed.length, 1);
    const ev = executed[0];
    assert.equal(ev.intentId, id);
    assert.equal(ev.owner, owner.address);
    assert.equal(ev.recipient, recipient.address);
    assert.equal(ev.token, usdc.target);
    assert.equal(ev.amount, 12_345_678n);
    assert.equal(ev.count, 0n);

    const block = await provider.getBlock(receipt.blockNumber);
    assert.equal(await registry.executedCount(id), 1n);
    assert.equal(await registry.lastExecutedAt(id), BigInt(block.timestamp));
    assert.equal(await registry.revoked(id), false);

    // The second execution carries count 1 and the event says so.
    const second = await expectSuccess(execute(intent, signature, 1));
    assert.equal(events(second, registry, 'Executed')[0].count, 1n);
    assert.equal(await registry.executedCount(id), 2n);
});

test('wrong signer: a signature by someone other than the owner is refused', async () => {
    const intent = makeIntent();
    await expectRevert(execute(intent, await sign(stranger, intent), 0), 'IntentRegistry: wrong signer');
    assert.equal(await registry.executedCount(intentId(intent)), 0n);
});

test('tampered field: changing any signed term after signing breaks the signature', async () => {
    const intent = makeIntent();
    const signature = await sign(owner, intent);
    const tampered = [
        { amount: intent.amount + 1n },
        { recipient: stranger.address },
        { token: noBool.target },
        { minInterval: 1n },
        { validUntil: MAX_U64 - 1n },
        { maxExecutions: 5n },
        { salt: hexlify(randomBytes(32)) },
    ];
    for (const change of tampered) {
        await expectRevert(execute({ ...intent, ...change }, signature, 0), 'IntentRegistry: wrong signer');
    }
    // The untampered intent still works: the refusals above were about the changes.
    await expectSuccess(execute(intent, signature, 0));
});

test('malformed signatures are refused', async () => {
    const intent = makeIntent();
    const signature = await sign(owner, intent);
    const bytes = getBytes(signature);
    await expectRevert(execute(intent, dataSlice(signature, 0, 64), 0), 'IntentRegistry: bad signature length');
    await expectRevert(execute(intent, concat([signature, '0x00']), 0), 'IntentRegistry: bad signature length');
    const badV = Uint8Array.from(bytes);
    badV[64] = bytes[64] - 27; // 0/1 instead of 27/28
    await expectRevert(execute(intent, hexlify(badV), 0), 'IntentRegistry: bad signature v');
    const zeroR = Uint8Array.from(bytes);
    zeroR.fill(0, 0, 32); // r = 0: ecrecover finds no key and answers address 0
    await expectRevert(execute(intent, hexlify(zeroR), 0), 'IntentRegistry: invalid signature');
});

test('high-s signature is refused even though ecrecover would accept it', async () => {
    const intent = makeIntent();
    const sig = Signature.from(await sign(owner, intent));
    const highS = toBeHex(SECP256K1_N - BigInt(sig.s), 32);
    const flippedV = sig.v === 27 ? 28 : 27;
    const malleated = concat([sig.r, highS, toBeHex(flippedV, 1)]);

    // The malleated signature is valid for the owner as far as the ecrecover precompile goes...
    const digest = TypedDataEncoder.hash(domain, INTENT_TYPES, intent);
    const input = AbiCoder.defaultAbiCoder().encode(['bytes32', 'uint8', 'bytes32', 'bytes32'], [digest, flippedV, sig.r, highS]);
    const recovered = await provider.call({ to: '0x0000000000000000000000000000000000000001', data: input });
    assert.equal(AbiCoder.defaultAbiCoder().decode(['address'], recovered)[0], owner.address);

    // ...but the registry accepts only the low-s form.
    await expectRevert(execute(intent, malleated, 0), 'IntentRegistry: high s');
    await expectSuccess(execute(intent, sig.serialized, 0));
});

test('revoke: refused for a non-owner; by the owner it emits Revoked and stops execution', async () => {
    const intent = makeIntent();
    const id = intentId(intent);
    const signature = await sign(owner, intent);
    await expectSuccess(execute(intent, signature, 0));

    await expectRevert(registry.connect(stranger).revoke(intent, { gasLimit: GAS }), 'IntentRegistry: not owner');
    assert.equal(await registry.revoked(id), false);

    const receipt = await expectSuccess(registry.connect(owner).revoke(intent, { gasLimit: GAS }));
    const revokedEvents = events(receipt, registry, 'Revoked');
    assert.equal(revokedEvents.length, 1);
    assert.equal(revokedEvents[0].intentId, id);
    assert.equal(await registry.revoked(id), true);

    await expectRevert(execute(intent, signature, 1), 'IntentRegistry: revoked');
    assert.equal(await registry.executedCount(id), 1n);

    // Revoking again neither fails nor emits a second event.
    const again = await expectSuccess(registry.connect(owner).revoke(intent, { gasLimit: GAS }));
    assert.equal(events(again, registry, 'Revoked').length, 0);
});

test('validAfter: too early is refused, the exact second is allowed', async () => {
    const start = (await latestTimestamp()) + 1000n;
    const intent = makeIntent({ validAfter: start });
    const signature = await sign(owner, intent);
    await setNextTimestamp(start - 1n);
    await expectRevert(execute(intent, signature, 0), 'IntentRegistry: not yet valid');
    await setNextTimestamp(start);
    const receipt = await expectSuccess(execute(intent, signature, 0));
    assert.equal(await registry.lastExecutedAt(intentId(intent)), start);
    assert.equal(BigInt((await provider.getBlock(receipt.blockNumber)).timestamp), start);
});

test('validUntil: the exact second is allowed, later is expired', async () => {
    const t = await latestTimestamp();
    const end = t + 500n;
    const intent = makeIntent({ validUntil: end });
    const signature = await sign(owner, intent);
    await setNextTimestamp(end);
    await expectSuccess(execute(intent, signature, 0));
    await rpc('evm_increaseTime', [1]);
    await expectRevert(execute(intent, signature, 1), 'IntentRegistry: expired');
    assert.equal(await registry.executedCount(intentId(intent)), 1n);
});

test('count: a replay of count 0 after it executed, or a skipped count, is refused', async () => {
    const intent = makeIntent();
    const signature = await sign(owner, intent);
    await expectRevert(execute(intent, signature, 1), 'IntentRegistry: wrong count');
    await expectSuccess(execute(intent, signature, 0));
    const [before] = await balances(usdc, recipient.address);
    await expectRevert(execute(intent, signature, 0), 'IntentRegistry: wrong count');
    await expectRevert(execute(intent, signature, 2), 'IntentRegistry: wrong count');
    assert.equal((await balances(usdc, recipient.address))[0], before);
    assert.equal(await registry.executedCount(intentId(intent)), 1n);
});

test('minInterval: refused before it has elapsed, allowed once it has', async () => {
    const intent = makeIntent({ minInterval: 3600n });
    const id = intentId(intent);
    const signature = await sign(owner, intent);
    const t0 = (await latestTimestamp()) + 10n;
    await setNextTimestamp(t0);
    await expectSuccess(execute(intent, signature, 0));
    assert.equal(await registry.lastExecutedAt(id), t0);

    await setNextTimestamp(t0 + 3599n);
    await expectRevert(execute(intent, signature, 1), 'IntentRegistry: too soon');
    await setNextTimestamp(t0 + 3600n);
    await expectSuccess(execute(intent, signature, 1));
    assert.equal(await registry.lastExecutedAt(id), t0 + 3600n);

    // The interval counts from the last execution, not from the first.
    await setNextTimestamp(t0 + 7199n);
    await expectRevert(execute(intent, signature, 2), 'IntentRegistry: too soon');
    await rpc('evm_increaseTime', [3600]);
    await expectSuccess(execute(intent, signature, 2));
    assert.equal(await registry.executedCount(id), 3n);
});

test('maxExecutions: the limit is enforced; 0 means unlimited', async () => {
    const intent = makeIntent({ maxExecutions: 2n });
    const signature = await sign(owner, intent);
    await expectSuccess(execute(intent, signature, 0));
    await expectSuccess(execute(intent, signature, 1));
    await expectRevert(execute(intent, signature, 2), 'IntentRegistry: max executions reached');
    assert.equal(await registry.executedCount(intentId(intent)), 2n);

    const unlimited = makeIntent({ maxExecutions: 0n, amount: 1n });
    const sig2 = await sign(owner, unlimited);
    for (let i = 0; i < 4; i++) await expectSuccess(execute(unlimited, sig2, i));
    assert.equal(await registry.executedCount(intentId(unlimited)), 4n);
});

test('executeBatch: a failing member emits ExecutionFailed and does not undo the others', async () => {
    const a = makeIntent({ amount: 1_000_000n });
    const b = makeIntent({ amount: 2_000_000n });
    const c = makeIntent({ amount: 3_000_000n, recipient: recipient2.address });
    const d = makeIntent({ amount: 4_000_000n });
    const sigA = await sign(owner, a);
    await expectSuccess(execute(a, sigA, 0)); // so that a's next count is 1
    const batch = [
        { intent: a, signature: sigA, count: 1 },
        { intent: b, signature: await sign(stranger, b), count: 0 }, // wrong signer
        { intent: c, signature: await sign(owner, c), count: 0 },
        { intent: d, signature: await sign(owner, d), count: 5 }, // wrong count
    ];
    const [ownerBefore, r1Before, r2Before] = await balances(usdc, owner.address, recipient.address, recipient2.address);

    const receipt = await expectSuccess(registry.connect(deployer).executeBatch(batch, { gasLimit: 2_000_000n }));

    const executed = events(receipt, registry, 'Executed');
    assert.deepEqual(executed.map((e) => [e.intentId, e.count]), [[intentId(a), 1n], [intentId(c), 0n]]);
    const failed = events(receipt, registry, 'ExecutionFailed');
    assert.deepEqual(failed.map((e) => [e.intentId, e.count, e.reason]), [
        [intentId(b), 0n, errorData('IntentRegistry: wrong signer')],
        [intentId(d), 5n, errorData('IntentRegistry: wrong count')],
    ]);

    const [ownerAfter, r1After, r2After] = await balances(usdc, owner.address, recipient.address, recipient2.address);
    assert.equal(ownerBefore - ownerAfter, 4_000_000n);
    assert.equal(r1After - r1Before, 1_000_000n);
    assert.equal(r2After - r2Before, 3_000_000n);
    assert.equal(await registry.executedCount(intentId(a)), 2n);
    assert.equal(await registry.executedCount(intentId(b)), 0n);
    assert.equal(await registry.executedCount(intentId(c)), 1n);
    assert.equal(await registry.executedCount(intentId(d)), 0n);
});

test('executeOne is callable by the registry itself only', async () => {
    const intent = makeIntent();
    const signature = await sign(owner, intent);
    await expectRevert(
        registry.connect(deployer).executeOne(intent, signature, 0, { gasLimit: GAS }),
        'IntentRegistry: only self',
    );
    assert.equal(await registry.executedCount(intentId(intent)), 0n);
});

test('a token that returns no bool (like USDT) works', async () => {
    await expectSuccess(noBool.connect(owner2).mint(owner2.address, 100_000_000n, { gasLimit: GAS }));
    await expectSuccess(noBool.connect(owner2).approve(registryAddress, 60_000_000n, { gasLimit: GAS }));
    const intent = makeIntent({ owner: owner2.address, token: noBool.target, recipient: recipient2.address, amount: 30_000_000n });
    const signature = await sign(owner2, intent);
    const [ownerBefore, recipientBefore] = await balances(noBool, owner2.address, recipient2.address);
    const receipt = await expectSuccess(execute(intent, signature, 0));
    const [ownerAfter, recipientAfter] = await balances(noBool, owner2.address, recipient2.address);
    assert.equal(ownerBefore - ownerAfter, 30_000_000n);
    assert.equal(recipientAfter - recipientBefore, 30_000_000n);
    assert.equal(events(receipt, registry, 'Executed')[0].token, noBool.target);
    assert.equal(await noBool.allowance(owner2.address, registryAddress), 30_000_000n);

    // Its failures are still failures: the remaining allowance (30) is below 2 x 30 + 1.
    const big = makeIntent({ owner: owner2.address, token: noBool.target, amount: 30_000_001n });
    await expectRevert(execute(big, await sign(owner2, big), 0), 'IntentRegistry: transfer failed');
});

test('allowance or balance too low, or a token without code: the execution reverts', async () => {
    await expectSuccess(usdc.connect(owner2).mint(owner2.address, 50_000_000n, { gasLimit: GAS }));
    await expectSuccess(usdc.connect(owner2).approve(registryAddress, 9_999_999n, { gasLimit: GAS }));
    const low = makeIntent({ owner: owner2.address, amount: 10_000_000n });
    const lowSig = await sign(owner2, low);
    await expectRevert(execute(low, lowSig, 0), 'IntentRegistry: transfer failed');
    assert.equal(await registry.executedCount(intentId(low)), 0n);
    assert.equal(await registry.lastExecutedAt(intentId(low)), 0n);
    // With enough allowance the same signed intent goes through.
    await expectSuccess(usdc.connect(owner2).approve(registryAddress, 10_000_000n, { gasLimit: GAS }));
    await expectSuccess(execute(low, lowSig, 0));

    await expectSuccess(usdc.connect(owner2).approve(registryAddress, MaxUint256, { gasLimit: GAS }));
    const rich = makeIntent({ owner: owner2.address, amount: (await usdc.balanceOf(owner2.address)) + 1n });
    await expectRevert(execute(rich, await sign(owner2, rich), 0), 'IntentRegistry: transfer failed');

    // An address without code as the token must not count as paid.
    const noCode = makeIntent({ token: stranger.address });
    await expectRevert(execute(noCode, await sign(owner, noCode), 0), 'IntentRegistry: transfer failed');
    assert.equal(await registry.executedCount(intentId(noCode)), 0n);
});

// Gas per execution decides how many executions fit in a block, i.e. the engine's throughput
// ceiling on a gas-limited chain. Measured as the executor sends them: a batch of first
// executions (count 0: the registry's per-intent state is written for the first time) from a few
// owners with finite allowances to one recipient, then the same intents' second executions.
// The bound is what the packed per-intent state gives with room for compiler changes; the
// unpacked layout (a slot each for the count, the time and the revoked flag) cost ~70k.
const BATCH_GAS_PER_EXECUTION_MAX = 50_000n;

test('gas: an executeBatch member costs at most BATCH_GAS_PER_EXECUTION_MAX', async (t) => {
    const owners = [owner, owner2];
    for (const o of owners) {
        await expectSuccess(usdc.connect(o).mint(o.address, 1_000_000_000n, { gasLimit: GAS }));
        await expectSuccess(usdc.connect(o).approve(registryAddress, 1_000_000_000n, { gasLimit: GAS }));
    }
    const n = 40;
    const intents = [];
    for (let i = 0; i < n; i++) {
        const o = owners[i % owners.length];
        const intent = makeIntent({ owner: o.address, amount: 1n });
        intents.push({ intent, signature: await sign(o, intent) });
    }
    const perMember = async (count) => {
        const batch = intents.map(({ intent, signature }) => ({ intent, signature, count }));
        const receipt = await expectSuccess(registry.connect(deployer).executeBatch(batch, { gasLimit: 10_000_000n }));
        assert.equal(events(receipt, registry, 'Executed').length, n);
        assert.equal(events(receipt, registry, 'ExecutionFailed').length, 0);
        return receipt.gasUsed / BigInt(n);
    };
    const first = await perMember(0);
    const second = await perMember(1);
    t.diagnostic(`gas per executeBatch member: first execution ${first}, second ${second} (batch of ${n})`);
    assert.ok(first <= BATCH_GAS_PER_EXECUTION_MAX, `first executions cost ${first} gas each`);
    assert.ok(second <= first, `second executions cost ${second} gas each, first ${first}`);
    for (const { intent } of intents) assert.equal(await registry.executedCount(intentId(intent)), 2n);
});
