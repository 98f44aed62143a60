package demo

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
)

func md5Sum(b []byte) []byte    { s := md5.Sum(b); return s[:] }
func sha512Sum(b []byte) []byte { s := sha512.Sum512(b); return s[:] }
func refHex(b []byte) string    { return hex.EncodeToString(b) }
