// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.37;

/// @title ERC-20 without return values, for tests
/// @notice Behaves like an ERC-20 except that `transfer`, `transferFrom` and `approve` return
/// nothing, as USDT on Ethereum does. The intent registry must still work with it; a caller that
/// insists on a returned bool would fail. Open `mint`: anyone can mint (test token).
contract NoBoolToken {
    string public constant name = "No Bool Token";
    string public constant symbol = "NOBOOL";
    uint8 public constant decimals = 6;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// Open to anyone: this is a test token.
    function mint(address to, uint256 amount) external {
        require(to != address(0), "NoBoolToken: mint to zero address");
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    // Deliberately no `returns (bool)` on the three functions below.

    function transfer(address to, uint256 amount) external {
        move(msg.sender, to, amount);
    }

    function approve(address spender, uint256 amount) external {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "NoBoolToken: insufficient allowance");
            allowance[from][msg.sender] = allowed - amount;
        }
        move(from, to, amount);
    }

    function move(address from, address to, uint256 amount) private {
        require(to != address(0), "NoBoolToken: transfer to zero address");
        uint256 balance = balanceOf[from];
        require(balance >= amount, "NoBoolToken: insufficient balance");
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
