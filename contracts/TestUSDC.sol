// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.37;

/// @title Test USDC for the local development chain
/// @notice A plain ERC-20 named "USD Coin" / "USDC" with 6 decimals like the real one, and an open
/// `mint`: anyone can mint any amount to anyone. Never deploy it where its tokens could be
/// mistaken for money.
contract TestUSDC {
    string public constant name = "USD Coin";
    string public constant symbol = "USDC";
    uint8 public constant decimals = 6;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// Open to anyone: this is a test token.
    function mint(address to, uint256 amount) external {
        require(to != address(0), "TestUSDC: mint to zero address");
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        move(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// An allowance of 2^256-1 counts as unlimited and is not decreased, as with most tokens;
    /// users commonly grant the intent registry such an allowance.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "TestUSDC: insufficient allowance");
            allowance[from][msg.sender] = allowed - amount;
        }
        move(from, to, amount);
        return true;
    }

    function move(address from, address to, uint256 amount) private {
        require(to != address(0), "TestUSDC: transfer to zero address");
        uint256 balance = balanceOf[from];
        require(balance >= amount, "TestUSDC: insufficient balance");
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
