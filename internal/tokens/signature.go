package tokens

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"
)

// ECDSA signatures are malleable: if (r, s) verifies, so does (r, n-s), a second encoding of the
// same token that a deny list keyed on the token bytes, or a cache of verified tokens, would not
// recognise. rollgate signs with the low s (s <= n/2) and the verifier refuses the high one.

// halfOrder is n/2 of a curve, big-endian in the curve's scalar size.
type halfOrder struct {
	n    *big.Int
	half []byte
}

var halfOrders = map[elliptic.Curve]halfOrder{
	elliptic.P256(): newHalfOrder(elliptic.P256()),
	elliptic.P384(): newHalfOrder(elliptic.P384()),
}

func newHalfOrder(c elliptic.Curve) halfOrder {
	n := c.Params().N
	size := (c.Params().BitSize + 7) / 8
	return halfOrder{n: n, half: new(big.Int).Rsh(n, 1).FillBytes(make([]byte, size))}
}

// canonicalSignature refuses an ECDSA signature (r || s, RFC 7518 §3.4) whose s is above n/2.
// Other keys have one signature encoding; a signature of the wrong length is left to the
// signature check.
func canonicalSignature(key any, sig []byte) error {
	k, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil
	}
	h, ok := halfOrders[k.Curve]
	if !ok || len(sig) != 2*len(h.half) {
		return nil
	}
	if bytes.Compare(sig[len(h.half):], h.half) > 0 {
		return errors.New("ECDSA signature with high s (a malleated encoding)")
	}
	return nil
}

// lowS rewrites an ES256 or ES384 signature (r || s) with the low s, (r, n-s) when s > n/2;
// both verify, only the low one is accepted. Other signatures are returned unchanged.
func lowS(alg string, sig []byte) []byte {
	var h halfOrder
	switch alg {
	case "ES256":
		h = halfOrders[elliptic.P256()]
	case "ES384":
		h = halfOrders[elliptic.P384()]
	default:
		return sig
	}
	size := len(h.half)
	if len(sig) != 2*size || bytes.Compare(sig[size:], h.half) <= 0 {
		return sig
	}
	s := new(big.Int).SetBytes(sig[size:])
	out := append([]byte(nil), sig[:size]...)
	return append(out, new(big.Int).Sub(h.n, s).FillBytes(make([]byte, size))...)
}
