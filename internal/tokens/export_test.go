package tokens

// VerifiedLen is how many accepted tokens the verifier remembers, for tests.
func (v *Verifier) VerifiedLen() int {
	if v.verified == nil {
		return 0
	}
	return v.verified.Len()
}
