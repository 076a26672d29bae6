// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.37;

/// @title FlowPay intent registry
/// @notice Moves ERC-20 tokens from an owner to a recipient, but only within the terms the owner
/// signed as an EIP-712 `PaymentIntent`. The backend's executor (or anyone else) submits the
/// signed intent; the registry alone enforces the terms, so a leaked executor key can neither
/// take more than the owner authorised nor pay the same period twice.
/// @dev The contract is specified in docs shared with the backend (api.md, "The on-chain side").
/// Errors are `Error(string)` reason strings starting with "IntentRegistry: ", because the
/// backend decodes that one shape and maps each string to the rule that failed.
contract IntentRegistry {
    /// The terms the owner signs. Field order and types are part of the EIP-712 type string
    /// below and of every signature made so far: never change them.
    struct PaymentIntent {
        address owner;
        address token;
        address recipient;
        uint256 amount; // base units of `token`, per execution
        uint64 minInterval; // seconds required between two executions
        uint64 validAfter; // unix seconds, inclusive
        uint64 validUntil; // unix seconds, inclusive; 2^64-1 for "no end"
        uint32 maxExecutions; // 0 means unlimited
        bytes32 salt; // makes otherwise equal intents distinct
    }

    /// One member of `executeBatch`.
    struct Execution {
        PaymentIntent intent;
        bytes signature;
        uint32 count;
    }

    bytes32 private constant PAYMENT_INTENT_TYPEHASH = keccak256(
        "PaymentIntent(address owner,address token,address recipient,uint256 amount,"
        "uint64 minInterval,uint64 validAfter,uint64 validUntil,uint32 maxExecutions,bytes32 salt)"
    );
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("FlowPay");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// Half the order of secp256k1. For every valid signature (r, s) there is a second one,
    /// (r, n - s); accepting only s <= n/2 leaves exactly one valid encoding per signature, so
    /// a signature's bytes can be used as an identifier off chain without surprises.
    uint256 private constant SECP256K1_HALF_N =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// ERC-20 `transferFrom(address,address,uint256)`.
    bytes4 private constant TRANSFER_FROM_SELECTOR = 0x23b872dd;

    // The domain separator depends on the chain id. It is computed once at deployment, and again
    // on the fly only if the chain id has changed since (a chain fork), so that signatures made
    // for one fork cannot be replayed on the other.
    uint256 private immutable deployedChainId;
    bytes32 private immutable deployedDomainSeparator;

    /// What the registry knows about one intent. Packed into a single storage slot (4 + 8 + 1
    /// bytes), so that an execution reads and writes one slot: a first execution pays for one
    /// new slot instead of one per field, which is most of its gas. Never reorder or resize the
    /// fields of a deployed registry.
    struct IntentState {
        uint32 executedCount; // executions so far; also the `count` the next one must carry
        uint64 lastExecutedAt; // block.timestamp of the last execution, 0 before the first
        bool revoked; // set once by the owner; the intent can then never execute again
    }

    /// Per-intent state by intent id; read through the views below.
    mapping(bytes32 => IntentState) private states;

    // Reentrancy lock: 1 = free, 2 = held. Non-zero in both states so that taking and releasing
    // it costs a cheap non-zero to non-zero storage write.
    uint256 private lock = 1;

    /// A transfer was made: the execution with 0-based index `count` of intent `intentId`.
    event Executed(
        bytes32 indexed intentId,
        address indexed owner,
        address indexed recipient,
        address token,
        uint256 amount,
        uint32 count
    );
    /// A member of `executeBatch` failed; `reason` is its revert data (usually an
    /// `Error(string)` encoding). The other members are not affected.
    event ExecutionFailed(bytes32 indexed intentId, uint32 count, bytes reason);
    /// The owner revoked the intent.
    event Revoked(bytes32 indexed intentId);

    /// Held around the entry points that call the token. A token is picked by the intent's owner
    /// and may be hostile; without the lock it could call back into `execute` while the
    /// registry is in the middle of a transfer.
    modifier nonReentrant() {
        require(lock == 1, "IntentRegistry: reentrant call");
        lock = 2;
        _;
        lock = 1;
    }

    constructor() {
        deployedChainId = block.chainid;
        deployedDomainSeparator = buildDomainSeparator();
    }

    /// Executes the intent's `count`-th (0-based) transfer, or reverts saying which rule failed.
    /// Anyone may call it: the owner's signature is the authorisation, not the caller.
    function execute(PaymentIntent calldata intent, bytes calldata signature, uint32 count)
        external
        nonReentrant
    {
        executeInternal(intent, signature, count);
    }

    /// Runs each execution in turn. One that fails emits `ExecutionFailed` with its revert data
    /// and leaves the others in place, so a single bad intent cannot block a whole batch.
    function executeBatch(Execution[] calldata batch) external nonReentrant {
        for (uint256 i = 0; i < batch.length; i++) {
            Execution calldata e = batch[i];
            // An external call gives each member its own revert scope: a failure undoes only
            // what that member did. `executeOne` accepts calls from this contract only.
            try this.executeOne(e.intent, e.signature, e.count) {}
            catch (bytes memory reason) {
                emit ExecutionFailed(hashIntent(e.intent), e.count, reason);
            }
        }
    }

    /// Internal step of `executeBatch`, external only so that `try` can catch its revert.
    /// Callable by this contract alone, which at that point holds the reentrancy lock; a token
    /// calling back here is refused because it is not this contract.
    function executeOne(PaymentIntent calldata intent, bytes calldata signature, uint32 count) external {
        require(msg.sender == address(this), "IntentRegistry: only self");
        executeInternal(intent, signature, count);
    }

    /// Revokes the intent for good. Only its owner may. Revoking again is a no-op that emits
    /// nothing, so a repeated revoke transaction does not fail.
    function revoke(PaymentIntent calldata intent) external {
        require(msg.sender == intent.owner, "IntentRegistry: not owner");
        bytes32 intentId = hashIntent(intent);
        IntentState storage state = states[intentId];
        if (!state.revoked) {
            state.revoked = true;
            emit Revoked(intentId);
        }
    }

    /// The EIP-712 domain separator for {name "FlowPay", version "1", this chain, this contract}.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == deployedChainId ? deployedDomainSeparator : buildDomainSeparator();
    }

    /// Executions so far of an intent (by intent id); also the `count` the next execution must
    /// carry.
    function executedCount(bytes32 intentId) external view returns (uint32) {
        return states[intentId].executedCount;
    }

    /// `block.timestamp` (unix seconds) of the intent's last execution, 0 before the first one.
    /// uint64 like the intent's own times; `execute` checks `block.timestamp <= validUntil`
    /// (a uint64) first, so the stored value never truncates.
    function lastExecutedAt(bytes32 intentId) external view returns (uint64) {
        return states[intentId].lastExecutedAt;
    }

    /// True once the owner has revoked the intent; it can then never execute again.
    function revoked(bytes32 intentId) external view returns (bool) {
        return states[intentId].revoked;
    }

    /// The intent id: the EIP-712 struct hash (`hashStruct`) of the intent. It does not depend on
    /// the chain or the registry address; the signed digest does.
    function hashIntent(PaymentIntent calldata intent) public pure returns (bytes32) {
        // EIP-712 encodeData of a struct whose members are all atomic types is the members
        // ABI-encoded as 32-byte words, in order. A struct of static members ABI-encodes
        // inline as exactly those words, so abi.encode(typehash, intent) is
        // typeHash || encodeData(intent).
        return keccak256(abi.encode(PAYMENT_INTENT_TYPEHASH, intent));
    }

    function buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function executeInternal(PaymentIntent calldata intent, bytes calldata signature, uint32 count) private {
        bytes32 intentId = hashIntent(intent);
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), intentId));

        // Checks. The signature comes first: nothing about an intent matters before we know its
        // owner signed it.
        require(recoverSigner(digest, signature) == intent.owner, "IntentRegistry: wrong signer");
        // One SLOAD for all the per-intent checks (see IntentState).
        IntentState memory state = states[intentId];
        require(!state.revoked, "IntentRegistry: revoked");
        require(block.timestamp >= intent.validAfter, "IntentRegistry: not yet valid");
        require(block.timestamp <= intent.validUntil, "IntentRegistry: expired");
        // `count` must name the next execution exactly. This is what makes every execution
        // single-use: a replayed or duplicated transaction carries a count already used.
        require(count == state.executedCount, "IntentRegistry: wrong count");
        require(intent.maxExecutions == 0 || count < intent.maxExecutions, "IntentRegistry: max executions reached");
        // Widened to uint256 so that last + minInterval cannot overflow.
        require(
            count == 0 || block.timestamp >= uint256(state.lastExecutedAt) + intent.minInterval,
            "IntentRegistry: too soon"
        );

        // Effects, before the token is called (checks-effects-interactions): should the token
        // call back in, the state already says this execution happened. The whole slot is
        // written at once (one SSTORE); `revoked` is false here, checked above.
        states[intentId] = IntentState({
            executedCount: count + 1,
            lastExecutedAt: uint64(block.timestamp), // <= validUntil, a uint64: no truncation
            revoked: false
        });
        emit Executed(intentId, intent.owner, intent.recipient, intent.token, intent.amount, count);

        // Interaction.
        require(
            callTransferFrom(intent.token, intent.owner, intent.recipient, intent.amount),
            "IntentRegistry: transfer failed"
        );
    }

    /// Calls `token.transferFrom(from, to, amount)` and tells whether it succeeded. Tokens like
    /// USDT return nothing instead of a bool, which a typed Solidity call would reject, so this
    /// is a low-level call: success is a call that did not revert and returned either no data
    /// or a bool true.
    function callTransferFrom(address token, address from, address to, uint256 amount)
        private
        returns (bool)
    {
        // A call to an address without code "succeeds" with no data; without this check, an
        // intent naming a non-contract token would count as paid while nothing moved.
        if (token.code.length == 0) return false;
        bytes memory data = abi.encodeWithSelector(TRANSFER_FROM_SELECTOR, from, to, amount);
        bool ok;
        uint256 size;
        uint256 word;
        // Only the first 32 bytes of return data are copied, into scratch space: a token cannot
        // make the registry pay for copying a huge return value.
        assembly ("memory-safe") {
            ok := call(gas(), token, 0, add(data, 0x20), mload(data), 0, 0x20)
            size := returndatasize()
            word := mload(0)
        }
        if (!ok) return false;
        if (size == 0) return true; // a token that returns nothing
        return size >= 32 && word == 1; // an ABI-encoded bool true
    }

    /// Recovers the signer of `digest` from a 65-byte r || s || v signature. Reverts when the
    /// signature is malformed, has v other than 27 or 28, has a high s (see SECP256K1_HALF_N),
    /// or recovers to no address (ecrecover answers 0 for an invalid signature, which must
    /// never match an owner).
    function recoverSigner(bytes32 digest, bytes calldata signature) private pure returns (address) {
        require(signature.length == 65, "IntentRegistry: bad signature length");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(v == 27 || v == 28, "IntentRegistry: bad signature v");
        require(uint256(s) <= SECP256K1_HALF_N, "IntentRegistry: high s");
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "IntentRegistry: invalid signature");
        return signer;
    }
}
