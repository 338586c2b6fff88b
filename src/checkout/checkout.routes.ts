import express, { type Router } from 'express';

/** `GET /checkout/:orderNo`: the checkout page (being written; see issue "The checkout screen"). */
export function checkoutRouter(): Router {
  return express.Router();
}
