;; The native LSTM kernels' row pass in float32 WebAssembly SIMD (`lstm_rows.ts` runs it): one
;; f32x4 holds a gate's 4 units (U = 4). Source of `lstm_cell_wasm.ts` (its bytes, checked against
;; this file by `lstm_wasm_test.ts`; rebuild: `deno run -A --frozen tools/build_lstm_wasm.ts`).
;;
;; `rows(m, L, inW, head, w, x, st, out, tmp)`: m rows through L stacked cells (TF 1.7's
;; LSTMBlockCell, forget bias 1), then the U → 1 head when `head` is not 0. Byte offsets into this
;; module's memory (16-byte aligned):
;;   w:   per layer l: W_l [(width_l + 4) × 16] (width_0 = inW, then 4; rows: inputs, then h),
;;        b_l [16]; then the head's weights [4] and bias [1]
;;   x:   the rows' inputs [m, inW]
;;   st:  per layer l: c_l [m, 4] at st + 2l·16m, h_l [m, 4] at st + (2l + 1)·16m
;;   out: per layer l: c′_l at out + 2l·16m, h′_l at out + (2l + 1)·16m; the head's [m] at
;;        out + 2L·16m
;;   tmp: scratch of 128m bytes
;; Gates [i, ĉ, f, o] = b + Σ_k in_k·W[k] + Σ_k h_k·W[width + k] (in this order, float32);
;; c′ = σ(i)·tanh(ĉ) + c·σ(f + 1); h′ = tanh(c′)·σ(o); head = (p₀ + p₁) + (p₂ + p₃) + bias with
;; p = h′·w.
;;
;; Activations (float32 throughout), in passes over the block (each loop's body free of calls, so
;; that the rows' exps overlap):
;;   exp: Cephes' expf (n = x·log₂e rounded to nearest, r = x − n·ln2 in two parts, degree-7
;;        polynomial, ·2ⁿ by exponent bits), inputs clamped to [−87.33654, 88.37626], +∞ above;
;;        NaN stays NaN;
;;   σ(x) = 1 / (1 + exp(−x));
;;   tanh: Cephes' tanhf: |x| < 0.625 an odd polynomial, else sign(x)·(1 − e)/(1 + e) with
;;        e = exp(−2|x|).
;; `sigmoid(p, n)` and `tanh(p, n)` apply σ and tanh in place to the n floats at p (n a multiple of
;; 4; for the accuracy tests; `tanh` uses the n floats after them as scratch).
(module
  (memory (export "memory") 1)

  ;; exp, in place, of the n vectors at p
  (func $expN (param $p i32) (param $n i32)
    (local $end i32) (local $x v128) (local $t v128) (local $k v128) (local $r v128)
    (local $y v128) (local $big v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (v128.load (local.get $p)))
        (local.set $big (f32x4.gt (local.get $x) (v128.const f32x4 88.3762626647949 88.3762626647949 88.3762626647949 88.3762626647949)))
        ;; clamp (pmin/pmax with x first: a NaN x stays NaN)
        (local.set $x (f32x4.pmax (f32x4.pmin (local.get $x) (v128.const f32x4 88.3762626647949 88.3762626647949 88.3762626647949 88.3762626647949)) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654)))
        ;; t = x·log₂e + (1.5·2²³ + 127) rounds x·log₂e to the nearest integer k, and t's low
        ;; mantissa bits hold k + 127: 2ᵏ's exponent field once shifted left by 23
        (local.set $t (f32x4.add (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341)) (v128.const f32x4 12583039 12583039 12583039 12583039)))
        (local.set $k (f32x4.sub (local.get $t) (v128.const f32x4 12583039 12583039 12583039 12583039)))
        ;; r = x − k·C1 − k·C2 (C1 + C2 = ln 2; k·C1 exact)
        (local.set $r
          (f32x4.sub
            (f32x4.sub (local.get $x) (f32x4.mul (local.get $k) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
            (f32x4.mul (local.get $k) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
        (local.set $y (f32x4.add (f32x4.mul (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
        (local.set $y (f32x4.add (f32x4.mul (local.get $y) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
        (local.set $y (f32x4.add (f32x4.mul (local.get $y) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
        (local.set $y (f32x4.add (f32x4.mul (local.get $y) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
        (local.set $y (f32x4.add (f32x4.mul (local.get $y) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
        ;; eʳ = y·r² + r + 1; ·2ᵏ (k in [−126, 127]: a normal power of two); +∞ above the clamp
        (local.set $y
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $y) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
            (v128.const f32x4 1 1 1 1)))
        (v128.store (local.get $p)
          (v128.bitselect
            (v128.const f32x4 inf inf inf inf)
            (f32x4.mul (local.get $y) (i32x4.shl (local.get $t) (i32.const 23)))
            (local.get $big)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $next))))

  ;; tanh of the n vectors x at xp given e = exp(−2|x|) at ep, written over e: |x| < 0.625:
  ;; x + x·z·P(z) (z = x²), else sign(x)·(1 − e)/(1 + e)
  (func $tanhN (param $xp i32) (param $ep i32) (param $n i32)
    (local $end i32) (local $x v128) (local $e v128) (local $z v128) (local $p v128)
    (local.set $end (i32.add (local.get $ep) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $ep) (local.get $end)))
        (local.set $x (v128.load (local.get $xp)))
        (local.set $e (v128.load (local.get $ep)))
        (local.set $z (f32x4.mul (local.get $x) (local.get $x)))
        (local.set $p (f32x4.add (f32x4.mul (v128.const f32x4 -5.70498872745e-3 -5.70498872745e-3 -5.70498872745e-3 -5.70498872745e-3) (local.get $z)) (v128.const f32x4 2.06390887954e-2 2.06390887954e-2 2.06390887954e-2 2.06390887954e-2)))
        (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $z)) (v128.const f32x4 -5.37397155531e-2 -5.37397155531e-2 -5.37397155531e-2 -5.37397155531e-2)))
        (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $z)) (v128.const f32x4 1.33314422036e-1 1.33314422036e-1 1.33314422036e-1 1.33314422036e-1)))
        (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $z)) (v128.const f32x4 -3.33332819422e-1 -3.33332819422e-1 -3.33332819422e-1 -3.33332819422e-1)))
        (local.set $p
          (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $z)) (local.get $x)) (local.get $x)))
        (v128.store (local.get $ep)
          (v128.bitselect
            (local.get $p)
            (v128.or
              (f32x4.div (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $e)) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $e)))
              (v128.and (local.get $x) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000)))
            (f32x4.lt (f32x4.abs (local.get $x)) (v128.const f32x4 0.625 0.625 0.625 0.625))))
        (local.set $xp (i32.add (local.get $xp) (i32.const 16)))
        (local.set $ep (i32.add (local.get $ep) (i32.const 16)))
        (br $next))))

  (func (export "rows")
    (param $m i32) (param $L i32) (param $inW i32) (param $head i32)
    (param $w i32) (param $x i32) (param $st i32) (param $out i32) (param $tmp i32)
    (local $r i32) (local $l i32) (local $wl i32) (local $width i32) (local $in i32)
    (local $stride i32) (local $k i32) (local $wr i32) (local $wb i32) (local $mv i32)
    (local $so i32) (local $sp i32) (local $cp i32) (local $ap i32) (local $op i32)
    (local $ep i32) (local $s v128) (local $a0 v128) (local $a1 v128) (local $a2 v128)
    (local $a3 v128) (local $cn v128) (local $p v128)
    ;; tmp: the exps' arguments, gate by gate [4 × m vectors], ĉ [m], σ(o) [m], −2|c′| [m]
    (local.set $mv (i32.shl (local.get $m) (i32.const 4)))
    (local.set $ap (i32.add (local.get $tmp) (i32.shl (local.get $mv) (i32.const 2))))
    (local.set $op (i32.add (local.get $ap) (local.get $mv)))
    (local.set $ep (i32.add (local.get $op) (local.get $mv)))
    (local.set $wl (local.get $w))
    (local.set $width (local.get $inW))
    (local.set $in (local.get $x))
    (local.set $l (i32.const 0))
    (loop $layer
      ;; this layer's state at st + so and its outputs at out + so (c; h 16m later)
      (local.set $so (i32.mul (local.get $l) (i32.shl (local.get $mv) (i32.const 1))))
      (local.set $stride (i32.shl (local.get $width) (i32.const 2)))
      ;; the bias row follows W's width + 4 rows of 64 bytes
      (local.set $wb
        (i32.add (local.get $wl) (i32.shl (i32.add (local.get $width) (i32.const 4)) (i32.const 6))))
      ;; 1. the gates; the exps' arguments −i, −2|ĉ|, −(f + 1), −o, and ĉ
      (local.set $r (i32.const 0))
      (block $gDone
        (loop $gRow
          (br_if $gDone (i32.ge_u (local.get $r) (local.get $m)))
          (local.set $a0 (v128.load offset=0 (local.get $wb)))
          (local.set $a1 (v128.load offset=16 (local.get $wb)))
          (local.set $a2 (v128.load offset=32 (local.get $wb)))
          (local.set $a3 (v128.load offset=48 (local.get $wb)))
          (local.set $sp (i32.add (local.get $in) (i32.mul (local.get $r) (local.get $stride))))
          (local.set $wr (local.get $wl))
          (local.set $k (i32.const 0))
          (block $inDone
            (loop $inLoop
              (br_if $inDone (i32.ge_u (local.get $k) (local.get $width)))
              (local.set $s (v128.load32_splat (local.get $sp)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=0 (local.get $wr)))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $wr)))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $wr)))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $wr)))))
              (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
              (local.set $wr (i32.add (local.get $wr) (i32.const 64)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $inLoop)))
          ;; the recurrent state h
          (local.set $k (i32.shl (local.get $r) (i32.const 4)))
          (local.set $sp
            (i32.add (i32.add (i32.add (local.get $st) (local.get $so)) (local.get $mv)) (local.get $k)))
          (local.set $s (v128.load32_splat offset=0 (local.get $sp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=0 (local.get $wr)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $wr)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $wr)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $wr)))))
          (local.set $s (v128.load32_splat offset=4 (local.get $sp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=64 (local.get $wr)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=80 (local.get $wr)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=96 (local.get $wr)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=112 (local.get $wr)))))
          (local.set $s (v128.load32_splat offset=8 (local.get $sp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=128 (local.get $wr)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=144 (local.get $wr)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=160 (local.get $wr)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=176 (local.get $wr)))))
          (local.set $s (v128.load32_splat offset=12 (local.get $sp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=192 (local.get $wr)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=208 (local.get $wr)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=224 (local.get $wr)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=240 (local.get $wr)))))
          (local.set $sp (i32.add (local.get $tmp) (local.get $k)))
          (v128.store (local.get $sp) (f32x4.neg (local.get $a0)))
          (local.set $sp (i32.add (local.get $sp) (local.get $mv)))
          (v128.store (local.get $sp)
            (f32x4.neg (f32x4.add (f32x4.abs (local.get $a1)) (f32x4.abs (local.get $a1)))))
          (local.set $sp (i32.add (local.get $sp) (local.get $mv)))
          (v128.store (local.get $sp) (f32x4.neg (f32x4.add (local.get $a2) (v128.const f32x4 1 1 1 1))))
          (local.set $sp (i32.add (local.get $sp) (local.get $mv)))
          (v128.store (local.get $sp) (f32x4.neg (local.get $a3)))
          (v128.store (i32.add (local.get $ap) (local.get $k)) (local.get $a1))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $gRow)))
      ;; 2. their exps, and tanh(ĉ) over exp(−2|ĉ|)
      (call $expN (local.get $tmp) (i32.shl (local.get $m) (i32.const 2)))
      (call $tanhN (local.get $ap) (i32.add (local.get $tmp) (local.get $mv)) (local.get $m))
      ;; 3. c′ = σ(i)·tanh(ĉ) + c·σ(f + 1); σ(o) and −2|c′| kept
      (local.set $cp (i32.add (local.get $out) (local.get $so)))
      (local.set $r (i32.const 0))
      (block $cDone
        (loop $cRow
          (br_if $cDone (i32.ge_u (local.get $r) (local.get $m)))
          (local.set $k (i32.shl (local.get $r) (i32.const 4)))
          (local.set $sp (i32.add (local.get $tmp) (local.get $k)))
          (local.set $cn
            (f32x4.add
              (f32x4.mul
                (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (v128.load (local.get $sp))))
                (v128.load (i32.add (local.get $sp) (local.get $mv))))
              (f32x4.mul
                (v128.load (i32.add (i32.add (local.get $st) (local.get $so)) (local.get $k)))
                (f32x4.div (v128.const f32x4 1 1 1 1)
                  (f32x4.add (v128.const f32x4 1 1 1 1)
                    (v128.load (i32.add (local.get $sp) (i32.shl (local.get $mv) (i32.const 1)))))))))
          (v128.store (i32.add (local.get $cp) (local.get $k)) (local.get $cn))
          (v128.store (i32.add (local.get $op) (local.get $k))
            (f32x4.div (v128.const f32x4 1 1 1 1)
              (f32x4.add (v128.const f32x4 1 1 1 1) (v128.load (i32.add (local.get $sp) (i32.mul (local.get $mv) (i32.const 3)))))))
          (v128.store (i32.add (local.get $ep) (local.get $k))
            (f32x4.neg (f32x4.add (f32x4.abs (local.get $cn)) (f32x4.abs (local.get $cn)))))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $cRow)))
      ;; 4. tanh(c′) over exp(−2|c′|); 5. h′ = tanh(c′)·σ(o)
      (call $expN (local.get $ep) (local.get $m))
      (call $tanhN (local.get $cp) (local.get $ep) (local.get $m))
      (local.set $in (i32.add (local.get $cp) (local.get $mv)))
      (local.set $r (i32.const 0))
      (block $hDone
        (loop $hRow
          (br_if $hDone (i32.ge_u (local.get $r) (local.get $m)))
          (local.set $k (i32.shl (local.get $r) (i32.const 4)))
          (v128.store (i32.add (local.get $in) (local.get $k))
            (f32x4.mul
              (v128.load (i32.add (local.get $ep) (local.get $k)))
              (v128.load (i32.add (local.get $op) (local.get $k)))))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $hRow)))
      ;; the next layer: its weights after this one's bias, its inputs these h′
      (local.set $wl (i32.add (local.get $wb) (i32.const 64)))
      (local.set $width (i32.const 4))
      (local.set $l (i32.add (local.get $l) (i32.const 1)))
      (br_if $layer (i32.lt_u (local.get $l) (local.get $L))))
    ;; the head, on the last layer's h′ (at in)
    (if (local.get $head)
      (then
        (local.set $sp
          (i32.add (local.get $out) (i32.mul (local.get $L) (i32.shl (local.get $mv) (i32.const 1)))))
        (local.set $r (i32.const 0))
        (block $yDone
          (loop $yRow
            (br_if $yDone (i32.ge_u (local.get $r) (local.get $m)))
            (local.set $p
              (f32x4.mul
                (v128.load (i32.add (local.get $in) (i32.shl (local.get $r) (i32.const 4))))
                (v128.load (local.get $wl))))
            (f32.store (i32.add (local.get $sp) (i32.shl (local.get $r) (i32.const 2)))
              (f32.add
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $p)) (f32x4.extract_lane 1 (local.get $p)))
                  (f32.add (f32x4.extract_lane 2 (local.get $p)) (f32x4.extract_lane 3 (local.get $p))))
                (f32.load offset=16 (local.get $wl))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $yRow))))))

  (func (export "sigmoid") (param $p i32) (param $n i32)
    (local $q i32) (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
        (v128.store (local.get $q) (f32x4.neg (v128.load (local.get $q))))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br $next)))
    (call $expN (local.get $p) (i32.shr_u (local.get $n) (i32.const 2)))
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
        (v128.store (local.get $q) (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (v128.load (local.get $q)))))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br $next))))

  (func (export "tanh") (param $p i32) (param $n i32)
    (local $q i32) (local $end i32) (local $x v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
        (local.set $x (v128.load (local.get $q)))
        (v128.store (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2)))
          (f32x4.neg (f32x4.add (f32x4.abs (local.get $x)) (f32x4.abs (local.get $x)))))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br $next)))
    (call $expN (local.get $end) (i32.shr_u (local.get $n) (i32.const 2)))
    (call $tanhN (local.get $p) (local.get $end) (i32.shr_u (local.get $n) (i32.const 2)))
    (memory.copy (local.get $p) (local.get $end) (i32.shl (local.get $n) (i32.const 2)))))
